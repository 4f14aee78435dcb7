"""A run folder (OUTPUT_DIR) never loses a model: one live run at a time, and a new run moves
the earlier run aside instead of writing over its checkpoints, metrics and evaluations.

* **Lock.** A training run holds an exclusive ``flock`` on ``OUTPUT_DIR/.usvid_run.lock`` for
  as long as its process lives; a second run in the folder is refused at start with a
  :class:`RunFolderInUseError` (exit code 2 in the tools) naming the live run. The operating
  system releases the lock when the process ends, however it ends, so a crashed or killed run
  never leaves the folder stuck. Within one process the lock is re-entrant (``default_setup``
  and ``DefaultTrainer`` both take it).
* **Archive.** A new run (not ``--resume``) in a folder that holds an earlier run's checkpoints
  or metrics moves everything in the folder (weights, metrics, logs, evaluations,
  visualisations) into ``OUTPUT_DIR/previous_run_<time>/``, where TensorBoard still lists the
  metrics as a run of their own; earlier archives stay where they are.
"""

import fcntl
import logging
import os
import shlex
import socket
import sys
import time
from typing import Dict, List, Optional, Tuple

from ..config import ConfigError

__all__ = [
    "RunFolderInUseError",
    "RunFolderLock",
    "archive_previous_run",
    "move_previous_run",
    "log_moved_run",
    "check_weights_outside_archived_run",
]

logger = logging.getLogger(__name__)

LOCK_FILE = ".usvid_run.lock"
ARCHIVE_PREFIX = "previous_run_"
CHECKPOINT_TAG = "last_checkpoint"
METRICS_FILE = "metrics.json"


class RunFolderInUseError(ConfigError):
    """Another live process is training in this OUTPUT_DIR."""


class RunFolderLock:
    """The exclusive, process-lifetime lock of a run folder (see the module docstring).

    ``acquire()`` / ``release()`` nest within a process: the file is unlocked when the last
    holder releases it, or when the process ends."""

    # realpath of the folder -> [file descriptor, number of holders in this process]
    _held: Dict[str, List[int]] = {}

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self._key = os.path.realpath(output_dir)
        self._holding = False

    def acquire(self) -> None:
        if self._holding:
            return
        held = self._held.get(self._key)
        if held is not None:
            held[1] += 1
            self._holding = True
            return
        os.makedirs(self.output_dir, exist_ok=True)
        path = os.path.join(self.output_dir, LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown process"
            os.close(fd)
            raise RunFolderInUseError(
                f"OUTPUT_DIR {self.output_dir} is in use by another run that is still alive ({holder}). "
                "Wait for it to end, or give this run another OUTPUT_DIR. (A crashed run does not hold the "
                "folder: the lock ends with its process.)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, _describe_this_process().encode("utf-8"))
        self._held[self._key] = [fd, 1]
        self._holding = True

    def release(self) -> None:
        if not self._holding:
            return
        self._holding = False
        held = self._held[self._key]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self._key]
            os.close(held[0])  # closing the descriptor releases the flock


def _describe_this_process() -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {shlex.join(sys.argv)}\n"


def _is_run_output(name: str) -> bool:
    """Files that only a training run writes: their presence means the folder holds a run."""
    return name in (CHECKPOINT_TAG, METRICS_FILE) or name.endswith(".pth") or name.startswith("events.out.tfevents.")


def _entries_to_move(output_dir: str) -> List[str]:
    """The folder's entries a new run moves aside: all but the lock and earlier archives, when
    the folder holds a run; none otherwise."""
    if not os.path.isdir(output_dir):
        return []
    names = sorted(os.listdir(output_dir))
    if not any(_is_run_output(name) for name in names):
        return []
    return [name for name in names if name != LOCK_FILE and not name.startswith(ARCHIVE_PREFIX)]


def _refuse_to_archive_a_working_folder(output_dir: str) -> None:
    """Moving "everything" is only right for a folder of runs: not for the working folder (or
    one above it), where OUTPUT_DIR "." would move the user's files."""
    folder, cwd = os.path.realpath(output_dir), os.path.realpath(os.getcwd())
    if cwd == folder or cwd.startswith(folder.rstrip(os.sep) + os.sep):
        raise ConfigError(
            f"OUTPUT_DIR {output_dir} holds an earlier run's checkpoints or metrics, and it is (or holds) the "
            "working folder, so a new run cannot move that run aside without moving your files: give the "
            "new run its own OUTPUT_DIR, or continue the earlier run with --resume"
        )


def check_weights_outside_archived_run(output_dir: str, weights: str) -> None:
    """A new run that starts from weights of the earlier run in its own OUTPUT_DIR would move
    those weights away before loading them: refuse, saying what to do."""
    if not weights or not _entries_to_move(output_dir):
        return
    folder = os.path.realpath(output_dir).rstrip(os.sep) + os.sep
    if os.path.realpath(weights).startswith(folder):
        raise ConfigError(
            f"MODEL.WEIGHTS {weights} lies in OUTPUT_DIR {output_dir}, whose earlier run a new run moves to "
            f"{ARCHIVE_PREFIX}<time>/: copy the weights out of it or give the new run another OUTPUT_DIR "
            "(or continue the earlier run with --resume)"
        )


def move_previous_run(output_dir: str) -> Optional[Tuple[str, List[str]]]:
    """Move an earlier run out of the way of a new run in ``output_dir`` (see the module
    docstring), without logging (``default_setup`` calls it before logging is set up, so that
    the new run's log does not go to the earlier run's file). Returns the archive folder and
    the moved names, or None when the folder held no run."""
    names = _entries_to_move(output_dir)
    if not names:
        return None
    _refuse_to_archive_a_working_folder(output_dir)
    stem = os.path.join(output_dir, time.strftime(ARCHIVE_PREFIX + "%Y%m%d_%H%M%S"))
    archive, count = stem, 0
    while os.path.exists(archive):  # two new runs within one second
        count += 1
        archive = f"{stem}_{count}"
    os.makedirs(archive)
    for name in names:
        os.replace(os.path.join(output_dir, name), os.path.join(archive, name))
    return archive, names


def log_moved_run(output_dir: str, archive: str, names: List[str]) -> None:
    logger.warning(
        f"{output_dir} held an earlier run ({len(names)} entries: {', '.join(names[:6])}"
        f"{', ...' if len(names) > 6 else ''}); moved it to {archive}. To continue that run instead of "
        "starting a new one, move its files back and resume it (e.g. --resume)."
    )


def archive_previous_run(output_dir: str) -> Optional[str]:
    """``move_previous_run`` with a warning saying where the earlier run went; returns the
    archive folder, or None when the folder held no run."""
    moved = move_previous_run(output_dir)
    if moved is None:
        return None
    log_moved_run(output_dir, *moved)
    return moved[0]
