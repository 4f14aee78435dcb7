"""``PeriodicCheckpointer``: when to save during training and which periodic files to keep.

Apart from ``Checkpointer`` (what a checkpoint holds and how it is written and read): this is
the schedule and the rotation on disk, whose own state (the kept files) a checkpoint carries.
"""

import os
from typing import Any, Dict, List, Optional

from ..utils.periodic import fires_after
from .checkpointer import Checkpointer

__all__ = ["PeriodicCheckpointer"]


class PeriodicCheckpointer:
    """Save ``{file_prefix}_{iteration:07d}`` every ``period`` iterations and
    ``{file_prefix}_final`` at the last one, keeping at most ``max_to_keep`` periodic files.

    The list of kept files is part of ``state_dict`` so that a resumed run still deletes the
    files written before the interruption.
    """

    def __init__(
        self,
        checkpointer: Checkpointer,
        period: int,
        max_iter: Optional[int] = None,
        max_to_keep: Optional[int] = None,
        file_prefix: str = "model",
    ):
        if int(period) <= 0:
            raise ValueError(f"Checkpoint period must be a positive number of iterations, got {period}")
        if max_to_keep is not None and int(max_to_keep) <= 0:
            raise ValueError(f"max_to_keep must be positive or None, got {max_to_keep}")
        self.checkpointer = checkpointer
        self.period = int(period)
        self.max_iter = max_iter
        self.max_to_keep = max_to_keep
        self.file_prefix = file_prefix
        self.recent_checkpoints: List[str] = []

    def step(self, iteration: int, **kwargs: Any) -> None:
        """Save if ``iteration`` is a checkpoint iteration (call on every rank)."""
        iteration = int(iteration)
        if fires_after(iteration, self.period):
            self.save_iteration(iteration, **kwargs)
        if self.max_iter is not None and iteration >= self.max_iter - 1:
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=iteration, **kwargs)

    def save_iteration(self, iteration: int, **kwargs: Any) -> str:
        """Save ``{file_prefix}_{iteration:07d}`` now, as one of the ``max_to_keep`` kept files
        (also off-period: the checkpoint of a preempted run joins the rotation instead of
        staying forever). Returns its path. Call on every rank."""
        iteration = int(iteration)
        basename = f"{self.file_prefix}_{iteration:07d}.pth"
        # The kept-file list is updated before saving so that the saved state already
        # describes the folder as it will be after this save.
        if basename not in self.recent_checkpoints:
            self.recent_checkpoints.append(basename)
        expired = self._expire_old_checkpoints()
        self.checkpointer.save(basename[: -len(".pth")], iteration=iteration, **kwargs)
        self._delete(expired)
        return os.path.join(self.checkpointer.save_dir, basename)

    def _expire_old_checkpoints(self) -> List[str]:
        """Drop the oldest files beyond max_to_keep from the kept list; returns them."""
        if self.max_to_keep is None or len(self.recent_checkpoints) <= self.max_to_keep:
            return []
        expired = self.recent_checkpoints[: -self.max_to_keep]
        self.recent_checkpoints = self.recent_checkpoints[-self.max_to_keep :]
        return expired

    def _delete(self, basenames: List[str]) -> None:
        """Delete files only after the new checkpoint is safely on disk."""
        if not self.checkpointer.save_to_disk:
            return
        for basename in basenames:
            path = os.path.join(self.checkpointer.save_dir, basename)
            if os.path.exists(path):
                os.remove(path)

    def state_dict(self) -> Dict[str, Any]:
        return {"recent_checkpoints": list(self.recent_checkpoints)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.recent_checkpoints = list(state["recent_checkpoints"])
