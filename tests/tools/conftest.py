"""Shared fixtures of the tools tests: the tiny phantom of configs/phantom/tiny.yaml generated once
per session, the overrides that point that config at it, and a helper that runs a tool as a user
would (a subprocess from the repository root) and reports its output when it fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"

# The shipped smoke-run config: UltraDet on 4 phantom videos of 16 frames at 64 px (2 train,
# 2 test) at a width that trains ~20 iterations in seconds.
CONFIG = "configs/phantom/tiny.yaml"
# The shared training run: 10 iterations, evaluation and a checkpoint every 5, hard-negative
# mining after iteration 4 (the 5th).
TRAIN_OPTS = [
    "SOLVER.MAX_ITER",
    10,
    "TEST.EVAL_PERIOD",
    5,
    "SOLVER.CHECKPOINT_PERIOD",
    5,
    "DATALOADER.REFRESH_PERIOD",
    5,
]


def as_opts(overrides):
    """{"KEY": value} -> ["KEY", "value", ...] for a tool's command line."""
    return [str(item) for key, value in overrides.items() for item in (key, value)]


def _run_tool(script, *args, timeout=240, expect_code=0):
    """Run ``tools/<script>`` with ``args`` from the repository root; fail with its output
    unless it exits with ``expect_code``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, str(TOOLS / script), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == expect_code, (
        f"tools/{script} {' '.join(map(str, args))} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
    )
    return result


@pytest.fixture(scope="session")
def run_tool():
    """``run_tool(script, *args, expect_code=0)``: run tools/<script> as a user would; fails
    with its output when the exit code is another."""
    return _run_tool


@pytest.fixture(scope="session")
def phantom_config():
    """The shipped smoke-run config the tests train and evaluate (with ``tiny_opts``)."""
    return CONFIG


@pytest.fixture(scope="session")
def tiny_phantom_root(tmp_path_factory):
    """DATASETS.ROOT holding the tiny phantom (generated once per session by prepare_phantom)."""
    from usvid.config import add_ultrasound_config, get_cfg
    from usvid.data import prepare_phantom

    root = tmp_path_factory.mktemp("datasets")
    cfg = add_ultrasound_config(get_cfg())
    cfg.merge_from_file(str(REPO / CONFIG))
    cfg.DATASETS.ROOT = str(root)
    prepare_phantom(cfg)
    return root


@pytest.fixture(scope="session")
def tiny_opts(tiny_phantom_root):
    """Command-line overrides that point ``phantom_config`` at the tiny phantom of this session,
    read in the test process (no loader workers)."""
    return as_opts({"DATASETS.ROOT": tiny_phantom_root, "DATALOADER.NUM_WORKERS": 0})


@pytest.fixture(scope="session")
def train_opts():
    """The overrides of the shared training run (see TRAIN_OPTS)."""
    return list(TRAIN_OPTS)


@pytest.fixture(scope="session")
def run_tiny(tiny_opts):
    """``run_tiny(script, *args, opts=(), expect_code=0)``: ``run_tool`` on the tiny config, i.e.
    ``tools/<script> *args --config-file configs/phantom/tiny.yaml *tiny_opts *opts``, so ``opts``
    are config overrides that come after (and win over) the tiny phantom's."""

    def run(script, *args, opts=(), expect_code=0):
        return _run_tool(script, *args, "--config-file", CONFIG, *tiny_opts, *opts, expect_code=expect_code)

    return run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, run_tiny):
    """OUTPUT_DIR of one tools/train_net.py run on the tiny phantom (TRAIN_OPTS), shared by the
    tests that check its files, resume from it, re-evaluate or visualise it."""
    output_dir = tmp_path_factory.mktemp("train_net")
    run_tiny("train_net.py", opts=[*TRAIN_OPTS, "OUTPUT_DIR", output_dir])
    return output_dir


@pytest.fixture(scope="session")
def eval_only(trained_run, run_tiny, tmp_path_factory):
    """OUTPUT_DIR of train_net.py --eval-only on the trained run's final weights."""
    output = tmp_path_factory.mktemp("eval_only")
    weights = os.path.join(trained_run, "model_final.pth")
    run_tiny("train_net.py", "--eval-only", opts=["MODEL.WEIGHTS", weights, "OUTPUT_DIR", output])
    return output
