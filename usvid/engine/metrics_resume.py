"""Make ``metrics.json`` of a resumed run identical to the uninterrupted run's.

Smoothed scalars already continue exactly: the trainer's checkpointed state carries the recent
history of every scalar (``TrainerBase.state_dict``). What remains are the lines the interrupted
run wrote after its last scheduled write (the flush of a preempted run at ``k``, lines beyond
``k`` when the resume fell back to an older checkpoint, a line cut short by ``kill -9``):
:func:`rewind_metrics_file` removes them, and the resumed run writes them again on the
uninterrupted run's schedule.
"""

import json
import os

__all__ = ["rewind_metrics_file", "last_scheduled_write"]


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
