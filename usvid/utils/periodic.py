"""When a periodic action fires: the one rule every periodic part of the engine follows.

An action with period ``p`` (a writer, a checkpoint, an evaluation, the trainer's metric
gathering) fires after iteration ``i`` when ``(i + 1) % p == 0``, and after the last iteration
``max_iter - 1`` whatever the period (detectron2's rule). A period of 0 fires only there.
"""

from typing import Optional

__all__ = ["fires_after", "is_last_iteration", "last_scheduled_firing"]


def is_last_iteration(iteration: int, max_iter: Optional[int]) -> bool:
    """Whether ``iteration`` is the last one of a run of ``max_iter`` iterations (never when
    ``max_iter`` is None)."""
    return max_iter is not None and iteration + 1 == max_iter


def fires_after(iteration: int, period: int, max_iter: Optional[int] = None) -> bool:
    """Whether an action with ``period`` fires after ``iteration`` (see the module docstring)."""
    return (period > 0 and (iteration + 1) % period == 0) or is_last_iteration(iteration, max_iter)


def last_scheduled_firing(iteration: int, period: int) -> int:
    """The last iteration ``<= iteration`` after which an action with ``period`` fires in an
    uninterrupted run (the periodic part of the rule); -1 if none."""
    return (iteration + 1) // period * period - 1
