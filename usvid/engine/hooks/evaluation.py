"""Hooks around evaluation: running it (``EvalHook``) and stopping when its metric stops
improving (``EarlyStopping``)."""

import gc
import logging
import math
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Callable, Dict, Optional

from usvid.utils import comm
from usvid.utils.periodic import fires_after, is_last_iteration

from ..train_loop import HookBase
from .ema import EMA

__all__ = ["EvalHook", "EarlyStopping", "flatten_results_dict", "check_mode", "is_improvement"]

logger = logging.getLogger(__name__)


def check_mode(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' (higher is better) or 'min' (lower is better), got {mode!r}")
    return mode


def is_improvement(value: float, best: Optional[float], mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def flatten_results_dict(results: Mapping, prefix: str = "") -> Dict[str, float]:
    """``{"bbox": {"AP": 1}}`` -> ``{"bbox/AP": 1.0}``, the scalar names evaluation results get
    in the event storage and metrics.json; values must be numbers."""
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_results_dict(value, name + "/"))
            continue
        try:
            flat[name] = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"The evaluation result {name!r} = {value!r} is not a number; an evaluation "
                "(EvalHook's eval_function) must return a (nested) dict of numbers."
            ) from e
    return flat


class EvalHook(HookBase):
    """Run ``eval_function()`` every ``eval_period`` iterations and after training.

    Results (a nested dict of numbers) are flattened to ``"task/metric"`` names and put in the
    storage unsmoothed. Rank 0's results are shared with every rank, so hooks that act on them
    (BestCheckpointer, EarlyStopping) decide the same everywhere. When an ``EMA`` hook is
    registered, evaluation runs with the EMA weights swapped into the model.
    The final evaluation runs in ``after_train`` only if training finished."""

    def __init__(self, eval_period: int, eval_function: Callable[[], Optional[Mapping]], eval_after_train: bool = True):
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self):
        ema = next((h for h in self.trainer.hooks if isinstance(h, EMA)), None)
        with ema.apply_to_model() if ema is not None else nullcontext():
            results = self._func()
        # Rank 0's results on every rank: hooks acting on them must decide alike on all ranks
        # (rank 0 may be the only one with results). This also lines up the ranks again.
        results = comm.all_gather(results)[0]
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(f"EvalHook: eval_function must return a dict, got {type(results).__name__}")
            self.trainer.storage.put_scalars(**flatten_results_dict(results), smoothing_hint=False)

    def after_step(self):
        # The evaluation of the last iteration happens in after_train.
        iteration, max_iter = self.trainer.iter, self.trainer.max_iter
        if fires_after(iteration, self._period) and not is_last_iteration(iteration, max_iter):
            self._do_eval()

    def after_train(self):
        # iter == max_iter only when training finished; no evaluation after a failure (which
        # leaves iter at the failing iteration, max_iter - 1 if the last step failed).
        if self._eval_after_train and self.trainer.iter >= self.trainer.max_iter:
            self._do_eval()
        # eval_function is often a closure over the trainer: drop it to break the cycle, and
        # collect now so the model, data and predictions it held are freed before the process
        # moves on (e.g. to a test run). Not after periodic evaluations: a full collection
        # costs ~0.3 s and reference counting already frees what they leave behind.
        self._func = None
        gc.collect()


class EarlyStopping(HookBase):
    """Stop training when ``metric`` has not improved for ``patience`` evaluations in a row.

    Reads each new value of ``metric`` from the storage after the step that produced it (an
    ``EvalHook`` evaluation) and sets ``trainer.should_stop``. The best value and the count of
    evaluations without improvement (and which evaluation was counted last) are checkpointed,
    so a resumed run stops exactly where the uninterrupted run would."""

    priority = 60

    def __init__(self, metric: str, mode: str = "max", patience: int = 5):
        if patience < 1:
            raise ValueError(f"EarlyStopping patience must be >= 1 evaluation, got {patience}")
        self._metric = metric
        self._mode = check_mode(mode)
        self._patience = patience
        self.best: Optional[float] = None
        self.num_bad_evals = 0
        self._last_seen_iter: Optional[int] = None

    def after_step(self):
        latest = self.trainer.storage.latest().get(self._metric)
        if latest is None or latest[1] == self._last_seen_iter:
            return
        value, self._last_seen_iter = latest
        if is_improvement(value, self.best, self._mode):
            self.best, self.num_bad_evals = value, 0
            return
        self.num_bad_evals += 1
        if self.num_bad_evals >= self._patience:
            logger.info(
                f"Early stopping: {self._metric} has not improved on {self.best} for "
                f"{self.num_bad_evals} evaluations (patience {self._patience})."
            )
            self.trainer.should_stop = True

    def state_dict(self):
        # The last evaluation counted is kept too: the checkpoint also restores the storage
        # that holds it, and a resumed run must not count it a second time.
        return {"best": self.best, "num_bad_evals": self.num_bad_evals, "last_seen_iter": self._last_seen_iter}

    def load_state_dict(self, state_dict):
        self.best = state_dict["best"]
        self.num_bad_evals = state_dict["num_bad_evals"]
        self._last_seen_iter = state_dict.get("last_seen_iter")
