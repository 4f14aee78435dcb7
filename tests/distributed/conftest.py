"""Multi-process tests run a script in a fresh interpreter: ``launch`` spawns processes that
must import the main function by module, which a pytest-imported test module cannot offer."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_TRAINING_DIR = REPO / "tests" / "engine_defaults"
sys.path.insert(0, str(TOY_TRAINING_DIR))  # the toy DefaultTrainer application

from toy_training import preserved_usvid_logger  # noqa: E402


@pytest.fixture(autouse=True)
def restore_usvid_logger():
    with preserved_usvid_logger():
        yield


@pytest.fixture
def run_script(tmp_path):
    """Write ``source`` to tmp_path/name and run it with ``python`` (or ``python -m <launcher>``);
    returns (CompletedProcess, seconds)."""

    def run(source, *args, name="script.py", launcher=(), timeout=240):
        script = tmp_path / name
        script.write_text(textwrap.dedent(source))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(TOY_TRAINING_DIR)]))
        command = [sys.executable, *launcher, str(script), *map(str, args)]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
        return result, time.perf_counter() - start

    return run
