"""Hooks that write the run's outputs: the writers' metrics (``PeriodicWriter``), periodic
checkpoints and the checkpoint of the best evaluation."""

import logging
from typing import Iterable, Optional

from usvid.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from usvid.utils.events import EventWriter
from usvid.utils.periodic import fires_after, is_last_iteration, last_scheduled_firing

from ..train_loop import HookBase
from .evaluation import check_mode, is_improvement

__all__ = ["PeriodicWriter", "PeriodicCheckpointer", "BestCheckpointer"]

logger = logging.getLogger(__name__)


class PeriodicWriter(HookBase):
    """Call every writer's ``write()`` periodically, and once more (then ``close()``) at the end
    so values put in ``after_train`` (e.g. the final evaluation) are written too.

    In a run resumed at iteration ``s > 0`` each writer is first told (``resume_after``) the
    last iteration this hook wrote before ``s`` in an uninterrupted run: what an interrupted
    run wrote after that (the flush of a stopped run, lines beyond a fallback checkpoint) is
    written again on the uninterrupted schedule, so the output equals the uninterrupted run's."""

    priority = 80

    def __init__(self, writers: Iterable[EventWriter], period: int = 20):
        self._writers = list(writers)
        for writer in self._writers:
            if not isinstance(writer, EventWriter):
                raise TypeError(f"PeriodicWriter needs EventWriter instances, got {type(writer).__name__}")
        if period < 1:
            raise ValueError(f"PeriodicWriter period must be >= 1 iteration, got {period}")
        self._period = period

    def before_train(self):
        start_iter = self.trainer.start_iter
        if start_iter > 0:
            for writer in self._writers:
                writer.resume_after(last_scheduled_firing(start_iter - 1, self._period))

    def after_step(self):
        if fires_after(self.trainer.iter, self._period, self.trainer.max_iter):
            for writer in self._writers:
                writer.write()

    def after_train(self):
        for writer in self._writers:
            writer.write()
            writer.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """``usvid.checkpoint.PeriodicCheckpointer`` as a hook: saves after the periodic iterations
    and ``model_final`` after the last, or after the step a hook ended training at. Runs last
    (see the module docstring); register it on every rank, because saving gathers the RNG state
    of every rank."""

    priority = 90

    def before_train(self):
        # The trainer's max_iter wins over the constructor's (detectron2's rule).
        self.max_iter = self.trainer.max_iter

    def after_step(self):
        iteration = self.trainer.iter
        self.step(iteration)
        if self.trainer.should_stop and iteration < self.max_iter - 1:
            # A hook that runs before this one (e.g. EarlyStopping) ended training after this
            # step: its weights are the run's result, saved where the last iteration saves them.
            # (A preempted run is stopped after this hook, and saves a checkpoint to resume from.)
            logger.info(f"Training ends early after iteration {iteration}; saving {self.file_prefix}_final")
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=iteration)


class BestCheckpointer(HookBase):
    """Save ``{file_prefix}.pth`` whenever the evaluation metric ``val_metric`` improves.

    Checks after the evaluations of an ``EvalHook`` with the same ``eval_period``, including
    the final one in ``after_train``. Non-finite values never count as best."""

    priority = 60

    def __init__(
        self, eval_period: int, checkpointer, val_metric: str, mode: str = "max", file_prefix: str = "model_best"
    ):
        self._period = eval_period
        self._checkpointer = checkpointer
        self._val_metric = val_metric
        self._mode = check_mode(mode)
        self._file_prefix = file_prefix
        self.best_metric: Optional[float] = None
        self.best_iter: Optional[int] = None

    def _best_checking(self):
        # EvalHook gives every rank the same results, so every rank decides (and saves) alike.
        latest = self.trainer.storage.latest().get(self._val_metric)
        if latest is None:
            logger.warning(
                f"BestCheckpointer: the metric {self._val_metric!r} was not found in the event storage; "
                "no best checkpoint is saved. Check the name against the evaluation results."
            )
            return
        value, metric_iter = latest
        if is_improvement(value, self.best_metric, self._mode):
            previous = self.best_metric
            self.best_metric, self.best_iter = value, metric_iter
            self._checkpointer.save(self._file_prefix, iteration=metric_iter)
            logger.info(
                f"Saved best model ({self._val_metric} = {value:.5g} at iteration {metric_iter}, "
                f"previous best {previous})"
            )
        else:
            logger.info(
                f"Not saving as latest eval score for {self._val_metric} is {value:.5g}, not better "
                f"than best score {self.best_metric} @ iteration {self.best_iter}."
            )

    def after_step(self):
        # After EvalHook's periodic evaluations; the last iteration's is checked in after_train.
        iteration, max_iter = self.trainer.iter, self.trainer.max_iter
        if fires_after(iteration, self._period) and not is_last_iteration(iteration, max_iter):
            self._best_checking()

    def after_train(self):
        if self.trainer.iter >= self.trainer.max_iter:  # training finished: the final evaluation
            self._best_checking()

    def state_dict(self):
        return {"best_metric": self.best_metric, "best_iter": self.best_iter}

    def load_state_dict(self, state_dict):
        self.best_metric = state_dict["best_metric"]
        self.best_iter = state_dict["best_iter"]
