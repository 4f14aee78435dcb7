"""The ``metrics.json`` file (JSON lines, one per iteration) as a resumed run must treat it.

A run resumed from a checkpoint continues the interrupted run's file. The lines that run wrote
after its last scheduled write (the flush of a preempted run at ``k``, lines beyond ``k`` when
the resume fell back to an older checkpoint, a line cut short by ``kill -9``) are written again
by the resumed run on the uninterrupted run's schedule, so :func:`rewind_metrics_file` removes
them first; :func:`last_iteration_in` tells a writer where the file ends.
"""

import json
import os

__all__ = ["last_iteration_in", "rewind_metrics_file"]


def last_iteration_in(json_file: str) -> int:
    """The largest "iteration" among the lines of an existing metrics file (-1 if none).

    Read once when a writer opens the file, so that it skips iterations that are already
    there instead of duplicating them."""
    if not os.path.exists(json_file):
        return -1
    last = -1
    with open(json_file, encoding="utf-8") as f:
        for line in f:
            try:
                last = max(last, int(json.loads(line)["iteration"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash, or foreign content: not ours to judge
    return last


def rewind_metrics_file(path: str, last_kept_iteration: int) -> int:
    """Drop every line of the JSON-lines file ``path`` after ``last_kept_iteration`` (and any
    line that is not a complete JSON object, e.g. cut short by a crash), in place: a writer
    that opened the file for appending before goes on right after the kept lines. Returns the
    number of lines removed."""
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
