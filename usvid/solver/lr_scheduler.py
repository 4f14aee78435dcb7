"""Learning-rate schedules with warm-up, stepped once per iteration (detectron2 semantics).

They are ``torch.optim.lr_scheduler.LRScheduler`` subclasses computed in closed form from the
iteration (``last_epoch``), so their ``state_dict`` is a handful of numbers and a resumed run
continues with exactly the learning rate the interrupted run would have used.
"""

import bisect
import math
from typing import List, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["WarmupMultiStepLR", "WarmupCosineLR", "warmup_factor_at_iter"]

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


class _WarmupLR(LRScheduler):
    """Shared warm-up handling; subclasses give the decay factor at an iteration."""

    def __init__(self, optimizer: Optimizer, warmup_factor: float, warmup_iters: int, warmup_method: str, last_epoch: int):
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

    def _get_closed_form_lr(self) -> List[float]:
        return self.get_lr()


class WarmupMultiStepLR(_WarmupLR):
    """Warm-up, then the LR is multiplied by ``gamma`` at each milestone iteration."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, warmup_factor: float = 0.001, warmup_iters: int = 1000, warmup_method: str = "linear", last_epoch: int = -1):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"Milestones must be increasing, got {list(milestones)}")
        self.milestones = list(milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, iteration)


class WarmupCosineLR(_WarmupLR):
    """Warm-up, then half a cosine from the base LR at iteration 0 to 0 at ``max_iters``."""

    def __init__(self, optimizer: Optimizer, max_iters: int, warmup_factor: float = 0.001, warmup_iters: int = 1000, warmup_method: str = "linear", last_epoch: int = -1):
        self.max_iters = max_iters
        super().__init__(optimizer, warmup_factor, warmup_iters, warmup_method, last_epoch)

    def _decay_factor(self, iteration: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(iteration, self.max_iters) / self.max_iters))
