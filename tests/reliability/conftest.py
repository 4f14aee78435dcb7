"""Reliability tests run training scripts in a fresh interpreter, so that signals, ``kill -9``
and process exit are real; the toy DefaultTrainer application of tests/engine_defaults is on
their path."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_TRAINING_DIR = REPO / "tests" / "engine_defaults"
sys.path.insert(0, str(TOY_TRAINING_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # process_checks

from toy_training import preserved_usvid_logger  # noqa: E402


@pytest.fixture(autouse=True)
def restore_usvid_logger():
    with preserved_usvid_logger():
        yield


@pytest.fixture
def start_script(tmp_path):
    """Write ``source`` to tmp_path/name and start it (cwd tmp_path); returns the Popen, whose
    stdout and stderr go to tmp_path/<name>.out / .err (no pipe that could fill and block)."""
    started = []

    def start(source, *args, name="script.py"):
        script = tmp_path / name
        script.write_text(textwrap.dedent(source))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(TOY_TRAINING_DIR)]))
        stdout = open(tmp_path / f"{script.stem}.out", "w")
        stderr = open(tmp_path / f"{script.stem}.err", "w")
        process = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)], cwd=tmp_path, env=env, stdout=stdout, stderr=stderr
        )
        stdout.close()
        stderr.close()
        started.append(process)
        return process

    yield start
    for process in started:  # a failed assertion must not leave a training process behind
        if process.poll() is None:
            process.kill()
            process.wait()
