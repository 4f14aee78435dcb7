"""Make ``metrics.json`` of a resumed run identical to the uninterrupted run's.

Two things would otherwise differ after a resume from the checkpoint of iteration ``k``:

* smoothed scalars: a line is the median of the last 20 iterations, but a fresh
  ``EventStorage`` starts empty at ``k + 1``. :class:`ScalarHistoryState` keeps the recent
  history of every scalar in the checkpoint and puts it back before training resumes;
* lines the interrupted run wrote after its last scheduled write (the flush of a preempted run
  at ``k``, lines beyond ``k`` when the resume fell back to an older checkpoint, a line cut short
  by ``kill -9``). :func:`rewind_metrics_file` removes them, and the resumed run writes them
  again on the uninterrupted run's schedule.
"""

import json
import os
from typing import Any, Dict, Optional

from .train_loop import HookBase

__all__ = ["ScalarHistoryState", "rewind_metrics_file", "last_scheduled_write"]

# More than any smoothing window in use (20), so every windowed median/mean is exact.
HISTORY_KEPT = 200


class ScalarHistoryState(HookBase):
    """Checkpoints the last :data:`HISTORY_KEPT` values of every scalar in the event storage
    and restores them at the start of the resumed run (before any hook reads the storage)."""

    priority = 0

    def __init__(self) -> None:
        self._restored: Optional[Dict[str, Any]] = None

    def state_dict(self) -> Dict[str, Any]:
        storage = getattr(self.trainer, "storage", None)
        if storage is None:  # saved outside training: nothing recorded
            return {}
        hints = storage.smoothing_hints()
        return {
            "scalars": {
                name: {"smoothing_hint": hints[name], "values": history.values()[-HISTORY_KEPT:]}
                for name, history in storage.histories().items()
            }
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._restored = state

    def before_train(self) -> None:
        if not self._restored:
            return
        storage = self.trainer.storage
        for name, entry in self._restored["scalars"].items():
            for value, iteration in entry["values"]:
                storage.put_scalar(name, value, smoothing_hint=entry["smoothing_hint"], cur_iter=int(iteration))
        self._restored = None


def last_scheduled_write(iteration: int, period: int) -> int:
    """The last iteration ``<= iteration`` after which a writer with ``period`` writes in an
    uninterrupted run (``(i + 1) % period == 0``); -1 if none."""
    return (iteration + 1) // period * period - 1


def rewind_metrics_file(path: str, last_kept_iteration: int) -> int:
    """Drop every line of the JSON-lines file ``path`` after ``last_kept_iteration`` (and any
    line that is not a complete JSON object, e.g. cut short by a crash), in place: a writer
    that opens the file afterwards appends right after the kept lines. Returns the number of
    lines removed."""
    if not os.path.exists(path):
        return 0
    kept_bytes, removed = 0, 0
    with open(path, "rb") as f:
        for line in f:
            try:
                keep = line.endswith(b"\n") and int(json.loads(line)["iteration"]) <= last_kept_iteration
            except (ValueError, KeyError, TypeError):
                keep = False
            if keep and removed == 0:
                kept_bytes += len(line)
            else:
                removed += 1
    if removed:
        with open(path, "r+b") as f:
            f.truncate(kept_bytes)
    return removed
