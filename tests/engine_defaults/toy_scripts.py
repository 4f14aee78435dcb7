"""What the tests that run a toy-training script in a fresh interpreter share (there signals,
``kill -9``, process exit and ``launch`` are real): the script file, its environment, and the
autouse fixture that restores the "usvid" logger after the runs a test makes in-process. A
conftest imports the fixture to turn it on for its folder."""

import os
import textwrap
from pathlib import Path

import pytest
from toy_training import preserved_usvid_logger

TOY_TRAINING_DIR = Path(__file__).resolve().parent
REPO = TOY_TRAINING_DIR.parents[1]


def write_script(folder, name: str, source: str) -> Path:
    """``source`` (dedented) as ``folder/name``; returns its path."""
    script = Path(folder) / name
    script.write_text(textwrap.dedent(source))
    return script


def script_env() -> dict:
    """The script's environment: one intra-op thread, usvid and toy_training importable."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(TOY_TRAINING_DIR)]))


@pytest.fixture(autouse=True)
def restore_usvid_logger():
    with preserved_usvid_logger():
        yield
