"""Reliability tests run training scripts in a fresh interpreter, so that signals, ``kill -9``
and process exit are real; the toy DefaultTrainer application of tests/engine_defaults is on
their path."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_TRAINING_DIR = REPO / "tests" / "engine_defaults"
sys.path.insert(0, str(TOY_TRAINING_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # process_checks

from toy_scripts import restore_usvid_logger, script_env, write_script  # noqa: E402,F401


@pytest.fixture
def start_script(tmp_path):
    """Write ``source`` to tmp_path/name and start it (cwd tmp_path); returns the Popen, whose
    stdout and stderr go to tmp_path/<name>.out / .err (no pipe that could fill and block)."""
    started = []

    def start(source, *args, name="script.py"):
        script = write_script(tmp_path, name, source)
        stdout = open(tmp_path / f"{script.stem}.out", "w")
        stderr = open(tmp_path / f"{script.stem}.err", "w")
        process = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)], cwd=tmp_path, env=script_env(), stdout=stdout, stderr=stderr
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
