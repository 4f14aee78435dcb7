"""Polling helpers for tests that watch a training script from outside."""

import time
from pathlib import Path


def wait_for_file(path: Path, process, timeout: float = 120.0) -> str:
    """The content of ``path`` once the script wrote it (fails if the script ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        assert process.poll() is None, f"the script ended (code {process.returncode}) before writing {path.name}"
        time.sleep(0.05)
    raise AssertionError(f"{path.name} not written within {timeout} s")


def is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (reaped, or a zombie waiting for its new parent)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True
