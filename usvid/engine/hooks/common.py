"""Hooks for the training loop's own bookkeeping: plain-function callbacks, step timing,
learning-rate scheduling and profiling."""

import logging
import os
import time
from typing import Callable, Iterable, Optional

import torch
from torch.optim.lr_scheduler import LRScheduler as TorchLRScheduler

from usvid.solver import LRMultiplier

from ..train_loop import HookBase

__all__ = ["CallbackHook", "IterationTimer", "LRScheduler", "TorchProfiler"]

logger = logging.getLogger(__name__)


class CallbackHook(HookBase):
    """A hook made of plain functions, each called with the trainer."""

    def __init__(
        self,
        *,
        before_train: Optional[Callable] = None,
        after_train: Optional[Callable] = None,
        before_step: Optional[Callable] = None,
        after_backward: Optional[Callable] = None,
        after_step: Optional[Callable] = None,
    ):
        self._functions = dict(
            before_train=before_train,
            after_train=after_train,
            before_step=before_step,
            after_backward=after_backward,
            after_step=after_step,
        )

    def _call(self, callback: str) -> None:
        function = self._functions[callback]
        if function:
            function(self.trainer)

    def before_train(self):
        self._call("before_train")

    def after_train(self):
        self._call("after_train")
        # The functions are often closures over the trainer: drop them to break the cycle.
        self._functions = dict.fromkeys(self._functions)

    def before_step(self):
        self._call("before_step")

    def after_backward(self):
        self._call("after_backward")

    def after_step(self):
        self._call("after_step")


def _format_seconds(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) if seconds < 86400 else f"{seconds / 3600:.1f} h"


class IterationTimer(HookBase):
    """Put each step's duration as ``time`` and log the overall speed at the end.

    The first ``warmup_iter`` steps (allocator warm-up, lazy initialisation) are neither logged
    nor counted in the average. ``time`` covers the step and the hooks that run between this
    hook's ``before_step`` and ``after_step``; the final report separates time spent in hooks.
    """

    def __init__(self, warmup_iter: int = 3):
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._train_start = 0.0
        self._total_step_time = 0.0  # time inside (before_step, after_step) after warm-up
        self._timed_steps = 0

    def before_train(self):
        self._train_start = time.perf_counter()
        self._total_step_time = 0.0
        self._timed_steps = 0
        # A resumed run starts with the step times restored from the checkpoint, but its first
        # warmup_iter steps are untimed: the restored latest time must not be written as new.
        self.trainer.storage.discard_latest("time")

    def before_step(self):
        self._step_start = time.perf_counter()

    def after_step(self):
        now = time.perf_counter()
        iterations_done = self.trainer.iter - self.trainer.start_iter + 1
        if iterations_done > self._warmup_iter:
            step_time = now - self._step_start
            self._total_step_time += step_time
            self._timed_steps += 1
            self.trainer.storage.put_scalar("time", step_time)
        else:
            self._train_start = now  # the total starts after the warm-up

    def after_train(self):
        total = time.perf_counter() - self._train_start
        if self._timed_steps > 0:
            logger.info(
                f"Overall training speed: {self._timed_steps} iterations in "
                f"{_format_seconds(self._total_step_time)} ({self._total_step_time / self._timed_steps:.4f} s / it)"
            )
        logger.info(
            f"Total training time: {_format_seconds(total)} "
            f"({_format_seconds(max(total - self._total_step_time, 0.0))} on hooks)"
        )

    @property
    def timed_steps(self) -> int:
        """Steps measured after the warm-up (the ones the average covers)."""
        return self._timed_steps


class LRScheduler(HookBase):
    """Put the learning rate of the largest parameter group as ``lr``, THEN step the scheduler,
    so ``lr`` at iteration i is the rate the optimizer used in step i.

    ``optimizer`` / ``scheduler`` default to the trainer's ``optimizer`` / ``scheduler``. The
    scheduler is a ``torch`` LR scheduler, or a param scheduler (a callable of training
    progress in [0, 1) returning an LR multiplier, see ``usvid.solver.param_scheduler``) that
    is wrapped in an ``LRMultiplier`` over the trainer's ``max_iter`` when training starts. That
    wrapper starts at the trainer's iteration, so its state needs no checkpoint."""

    def __init__(self, optimizer: Optional[torch.optim.Optimizer] = None, scheduler=None):
        self._optimizer = optimizer
        self._scheduler = scheduler
        self._lr_multiplier: Optional[LRMultiplier] = None  # runs a param scheduler
        self._group_index = 0

    @property
    def scheduler(self):
        return self._scheduler if self._scheduler is not None else self.trainer.scheduler

    def before_train(self):
        if self._optimizer is None:
            self._optimizer = self.trainer.optimizer
        groups = self._optimizer.param_groups
        self._group_index = max(range(len(groups)), key=lambda i: len(groups[i]["params"]))
        self._scheduler = self.scheduler  # resolved once, not on every step
        if not isinstance(self._scheduler, TorchLRScheduler):
            self._lr_multiplier = LRMultiplier(
                self._optimizer, self._scheduler, self.trainer.max_iter, last_iter=self.trainer.iter - 1
            )

    def after_step(self):
        lr = self._optimizer.param_groups[self._group_index]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        (self._lr_multiplier or self._scheduler).step()

    def state_dict(self):
        scheduler = self.scheduler
        return scheduler.state_dict() if isinstance(scheduler, TorchLRScheduler) else {}

    def load_state_dict(self, state_dict):
        scheduler = self.scheduler
        if isinstance(scheduler, TorchLRScheduler):
            scheduler.load_state_dict(state_dict)


class TorchProfiler(HookBase):
    """Profile the steps for which ``enable_predicate(trainer)`` is true with
    ``torch.profiler`` and write a chrome trace ``profiler-trace-iter{i}.json`` per step."""

    def __init__(self, enable_predicate: Callable, output_dir: str, *, activities: Optional[Iterable] = None):
        self._enable_predicate = enable_predicate
        self._output_dir = output_dir
        self._activities = list(activities) if activities is not None else None
        self._profiler = None

    def before_step(self):
        if self._enable_predicate(self.trainer):
            self._profiler = torch.profiler.profile(activities=self._activities, record_shapes=True)
            self._profiler.__enter__()
        else:
            self._profiler = None

    def after_step(self):
        if self._profiler is None:
            return
        self._profiler.__exit__(None, None, None)
        os.makedirs(self._output_dir, exist_ok=True)
        out_file = os.path.join(self._output_dir, f"profiler-trace-iter{self.trainer.iter}.json")
        self._profiler.export_chrome_trace(out_file)
        self._profiler = None
