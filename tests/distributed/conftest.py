"""Multi-process tests run a script in a fresh interpreter: ``launch`` spawns processes that
must import the main function by module, which a pytest-imported test module cannot offer."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_TRAINING_DIR = REPO / "tests" / "engine_defaults"
sys.path.insert(0, str(TOY_TRAINING_DIR))  # the toy DefaultTrainer application

from toy_scripts import restore_usvid_logger, script_env, write_script  # noqa: E402,F401


@pytest.fixture
def run_script(tmp_path):
    """Write ``source`` to tmp_path/name and run it with ``python`` (or ``python -m <launcher>``);
    returns (CompletedProcess, seconds)."""

    def run(source, *args, name="script.py", launcher=(), timeout=240):
        command = [sys.executable, *launcher, str(write_script(tmp_path, name, source)), *map(str, args)]
        start = time.perf_counter()
        result = subprocess.run(
            command, cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=timeout
        )
        return result, time.perf_counter() - start

    return run
