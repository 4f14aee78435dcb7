"""Atomic file writes: a reader (or a resumed run after a crash) sees either the old file or the
complete new one, never a half-written file."""

import contextlib
import os
import tempfile
from typing import IO, Iterator

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success flush, fsync and ``os.replace`` it.
    The file gets the permissions of a plain ``open(path, "w")`` (0666 less the umask).

    The temporary file lives in the same folder so the final rename never crosses file systems
    (``os.replace`` is atomic only within one). On error the temporary file is removed and
    ``path`` is left untouched. A ``kill -9`` mid-write leaves at most a stray
    ``.<name>.*.tmp`` file, never a partial ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); the result gets the mode open() would give
        # it, so colleagues on a shared server can read what the user's umask lets them.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


def _current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it (setting it to
    read it back would briefly affect files other threads create)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable: without it a power loss right after ``os.replace`` may
    bring back the old directory entry (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data itself is already synced
    finally:
        os.close(fd)
