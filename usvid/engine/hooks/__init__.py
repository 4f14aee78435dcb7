"""The standard training hooks (detectron2 names and firing rules), one module per
responsibility: ``common`` (callbacks, timing, LR scheduling, profiling), ``checkpointing``
(writers, periodic and best checkpoints), ``evaluation`` (evaluation, early stopping),
``batch_norm`` (precise BatchNorm statistics) and ``ema`` (the weights' moving average).

Periodic hooks fire after iteration ``i`` when ``(i + 1) % period == 0`` and on the last
iteration (``usvid.utils.periodic``). Priorities (lower runs first; equal ones keep registration
order) fix the order that correctness depends on, whatever order the hooks were registered in:

* ``EMA`` (20) updates its weights right after the optimizer step, before anything evaluates
  or saves them;
* the default (50): timing, LR scheduling, PreciseBN, evaluation, profiling;
* ``BestCheckpointer`` and ``EarlyStopping`` (60) act on evaluation results of this step;
* ``PeriodicWriter`` (80) writes everything the step and the hooks above produced;
* ``PeriodicCheckpointer`` (90) saves last, so a checkpoint holds every hook's state after
  this step (best metric, early-stopping counters, EMA weights) and a resumed run continues
  exactly; metrics of the saved iteration are already written, so none are lost or duplicated.
"""

from ..train_loop import HookBase  # noqa: F401 - hooks.HookBase, as in detectron2
from .batch_norm import PreciseBN, update_bn_stats
from .checkpointing import BestCheckpointer, PeriodicCheckpointer, PeriodicWriter
from .common import CallbackHook, IterationTimer, LRScheduler, TorchProfiler
from .ema import EMA
from .evaluation import EarlyStopping, EvalHook, flatten_results_dict

__all__ = [
    "CallbackHook",
    "IterationTimer",
    "PeriodicWriter",
    "PeriodicCheckpointer",
    "BestCheckpointer",
    "LRScheduler",
    "EvalHook",
    "PreciseBN",
    "update_bn_stats",
    "flatten_results_dict",
    "TorchProfiler",
    "EarlyStopping",
    "EMA",
]
