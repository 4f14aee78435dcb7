"""Learning-rate schedules with warm-up, stepped once per iteration (detectron2 semantics).

They are ``torch.optim.lr_scheduler.LRScheduler`` subclasses computed in closed form from the
iteration (``last_epoch``), so a resumed run continues with exactly the learning rate the
interrupted run would have used. Their checkpointed state is the iteration only: a run resumed
with a changed schedule (``SOLVER.STEPS``, ``MAX_ITER``, ``BASE_LR`` ...) follows the config, as
detectron2's do, and says what changed.
"""

import bisect
import logging
import math
from typing import Any, Dict, List, Mapping, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "ConfigFollowingLR",
    "WarmupMultiStepLR",
    "WarmupCosineLR",
    "WarmupStepWithFixedGammaLR",
    "warmup_factor_at_iter",
]

logger = logging.getLogger(__name__)

WARMUP_METHODS = ("linear", "constant")


def warmup_factor_at_iter(method: str, iteration: int, warmup_iters: int, warmup_factor: float) -> float:
    """The LR multiplier at ``iteration`` of the warm-up (1 once the warm-up is over).

    "constant" holds ``warmup_factor``; "linear" ramps from ``warmup_factor`` at iteration 0 to
    1 at ``warmup_iters``.
    """
    if iteration >= warmup_iters:
        return 1.0
    if method == "constant":
        return warmup_factor
    if method == "linear":
        alpha = iteration / warmup_iters
        return warmup_factor * (1 - alpha) + alpha
    raise ValueError(f"Unknown warm-up method {method!r}; valid: {', '.join(WARMUP_METHODS)}")


class ConfigFollowingLR(LRScheduler):
    """A closed-form schedule whose checkpoint state is its position, not its arguments.

    torch's schedulers save (and on load restore) every attribute, so a resumed run would keep
    the interrupted run's milestones and base LRs whatever the config now says. Here
    ``load_state_dict`` restores the iteration only, logs each argument that differs from the
    saved one (named by the config key in ``CONFIG_KEYS``) and sets the optimizer's learning
    rates to this schedule's at that iteration: load the optimizer first, then the scheduler,
    because loading the optimizer restores the saved rates."""

    # argument attribute -> the config key it comes from (build_lr_scheduler)
    CONFIG_KEYS: Dict[str, str] = {"base_lrs": "SOLVER.BASE_LR (and the per-group factors)"}

    def _arguments(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.CONFIG_KEYS}

    def state_dict(self) -> Dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count, **self._arguments()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        changes = [
            f"{self.CONFIG_KEYS[name]}: {state_dict[name]} -> {value}"
            for name, value in self._arguments().items()
            if name in state_dict and _as_list(state_dict[name]) != _as_list(value)
        ]
        if changes:
            logger.warning(
                f"The LR schedule differs from the checkpoint's; the resumed run follows the config from "
                f"iteration {state_dict['last_epoch']} on: " + "; ".join(changes)
            )
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self._last_lr = self.get_lr()
        for group, base_lr, lr in zip(self.optimizer.param_groups, self.base_lrs, self._last_lr):
            group["initial_lr"], group["lr"] = base_lr, lr

    def _get_closed_form_lr(self) -> List[float]:
        return self.get_lr()


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


class _WarmupLR(ConfigFollowingLR):
    """Shared warm-up handling; subclasses give the decay factor at an iteration."""

    CONFIG_KEYS = {
        **ConfigFollowingLR.CONFIG_KEYS,
        "warmup_factor": "SOLVER.WARMUP_FACTOR",
        "warmup_iters": "SOLVER.WARMUP_ITERS",
        "warmup_method": "SOLVER.WARMUP_METHOD",
    }

    def __init__(
        self, optimizer: Optimizer, warmup_factor: float, warmup_iters: int, warmup_method: str, last_epoch: int
    ):
        if warmup_method not in WARMUP_METHODS:
            raise ValueError(f"Unknown warm-up method {warmup_method!r}; valid: {', '.join(WARMUP_METHODS)}")
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> List[float]:
        iteration = self.last_epoch
        factor = warmup_factor_at_iter(self.warmup_method, iteration, self.warmup_iters, self.warmup_factor)
        factor *= self._decay_factor(iteration)
        return [base_lr * factor for base_lr in self.base_lrs]


class WarmupMultiStepLR(_WarmupLR):
    """Warm-up, then the LR is multiplied by ``gamma`` at each milestone iteration."""

    CONFIG_KEYS = {**_WarmupLR.CONFIG_KEYS, "milestones": "SOLVER.STEPS", "gamma": "SOLVER.GAMMA"}

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"Milestones must be increasing, got {list(milestones)}")
        self.milestones = list(milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, iteration)


class WarmupCosineLR(_WarmupLR):
    """Warm-up, then half a cosine from the base LR at iteration 0 to ``end_factor`` times it
    at ``max_iters`` (``SOLVER.BASE_LR_END / SOLVER.BASE_LR``; 0 by default)."""

    CONFIG_KEYS = {**_WarmupLR.CONFIG_KEYS, "max_iters": "SOLVER.MAX_ITER", "end_factor": "SOLVER.BASE_LR_END"}

    def __init__(
        self,
        optimizer: Optimizer,
        max_iters: int,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
        end_factor: float = 0.0,
    ):
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"The cosine schedule's end factor must be in [0, 1], got {end_factor}")
        self.max_iters = max_iters
        self.end_factor = end_factor
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(iteration, self.max_iters) / self.max_iters))
        return self.end_factor + (1.0 - self.end_factor) * cosine


class WarmupStepWithFixedGammaLR(_WarmupLR):
    """Warm-up, then ``num_decays`` multiplications by ``gamma`` at evenly spaced iterations:
    training is cut into ``num_decays + 1`` equal stages (detectron2's schedule of that name)."""

    CONFIG_KEYS = {
        **_WarmupLR.CONFIG_KEYS,
        "gamma": "SOLVER.GAMMA",
        "num_decays": "SOLVER.NUM_DECAYS",
        "max_iters": "SOLVER.MAX_ITER",
    }
    # Progress is rounded up by this much so that a stage boundary computed as a float is not missed.
    _PROGRESS_EPSILON = 1e-6

    def __init__(
        self,
        optimizer: Optimizer,
        gamma: float,
        num_decays: int,
        max_iters: int,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ):
        if num_decays < 0:
            raise ValueError(f"The number of decays must be >= 0, got {num_decays}")
        self.gamma = gamma
        self.num_decays = num_decays
        self.max_iters = max_iters
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        progress = iteration / self.max_iters + self._PROGRESS_EPSILON
        return self.gamma ** min(int(progress * (self.num_decays + 1)), self.num_decays)
