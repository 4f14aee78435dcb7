"""Schedules as functions of training progress (fvcore's "param schedulers").

A param scheduler is any callable ``where -> multiplier`` with ``where`` = iteration / max_iter in
[0, 1): it knows nothing about optimizers or iteration counts, so one schedule fits runs of any
length. ``LRMultiplier`` turns one into a ``torch`` LR scheduler; the ``LRScheduler`` hook does
that by itself when given a param scheduler. ``WarmupParamScheduler`` puts a warm-up in front.
"""

from typing import Callable, List

from torch.optim import Optimizer

from .lr_scheduler import WARMUP_METHODS, ConfigFollowingLR

__all__ = ["ParamScheduler", "LRMultiplier", "WarmupParamScheduler"]

ParamScheduler = Callable[[float], float]


class LRMultiplier(ConfigFollowingLR):
    """The learning rate of each parameter group is its base LR times ``multiplier(iteration /
    max_iter)``; stepped once per iteration like the other schedulers. ``last_iter``: the
    iteration finished before this scheduler starts (-1 for a new run)."""

    CONFIG_KEYS = {**ConfigFollowingLR.CONFIG_KEYS, "max_iter": "SOLVER.MAX_ITER"}

    def __init__(self, optimizer: Optimizer, multiplier: ParamScheduler, max_iter: int, last_iter: int = -1):
        if not callable(multiplier):
            raise TypeError(f"LRMultiplier needs a callable of training progress, got {type(multiplier).__name__}")
        if max_iter < 1:
            raise ValueError(f"LRMultiplier max_iter must be >= 1, got {max_iter}")
        self.multiplier = multiplier
        self.max_iter = max_iter
        for group in optimizer.param_groups:  # torch needs it to start mid-run (last_iter >= 0)
            group.setdefault("initial_lr", group["lr"])
        super().__init__(optimizer, last_epoch=last_iter)

    def get_lr(self) -> List[float]:
        factor = self.multiplier(self.last_epoch / self.max_iter)
        return [base_lr * factor for base_lr in self.base_lrs]


class WarmupParamScheduler:
    """``scheduler`` with its first ``warmup_length`` of training (a fraction in [0, 1)) replaced
    by a warm-up from ``warmup_factor * scheduler(0)``: "linear" ramps to the value at the end
    of the warm-up, "constant" holds the start value.

    ``rescale_interval=False`` (the default) leaves the schedule after the warm-up as it was;
    True squeezes the whole schedule into the rest of training (the warm-up ends at
    ``scheduler(0)``)."""

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ):
        if not 0.0 <= warmup_length < 1.0:
            raise ValueError(f"warmup_length is a fraction of training in [0, 1), got {warmup_length}")
        if warmup_method not in WARMUP_METHODS:
            raise ValueError(f"Unknown warm-up method {warmup_method!r}; valid: {', '.join(WARMUP_METHODS)}")
        self.scheduler = scheduler
        self.warmup_length = warmup_length
        self.warmup_method = warmup_method
        self.rescale_interval = rescale_interval
        self.start_value = warmup_factor * scheduler(0.0)
        self.end_value = scheduler(0.0) if rescale_interval else scheduler(warmup_length)

    def __call__(self, where: float) -> float:
        if where < self.warmup_length:
            if self.warmup_method == "constant":
                return self.start_value
            alpha = where / self.warmup_length
            return self.start_value * (1.0 - alpha) + self.end_value * alpha
        if self.rescale_interval:
            where = (where - self.warmup_length) / (1.0 - self.warmup_length)
        return self.scheduler(where)
