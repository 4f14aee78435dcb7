"""A cluster's scheduler (Slurm's ``scancel``, a Kubernetes eviction) sends SIGTERM to every
process of the job at once, the data-loader workers included. The trainer must still finish its
step, save a checkpoint and exit with 128 + SIGTERM: usvid's loader workers ignore the signal and
leave when the trainer does."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _wait_for_iteration(metrics_json, process, iteration, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"train_net.py exited early with {process.returncode}"
        if metrics_json.exists() and f'"iteration": {iteration}' in metrics_json.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"iteration {iteration} not reached in {timeout} s")


def test_sigterm_to_the_whole_process_group_still_checkpoints(phantom_config, tiny_opts, tmp_path):
    output_dir = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "tools" / "train_net.py"),
        "--config-file",
        phantom_config,
        *tiny_opts,
        "DATALOADER.NUM_WORKERS",
        "2",
        "SOLVER.MAX_ITER",
        "100000",
        "TEST.EVAL_PERIOD",
        "0",
        "SOLVER.CHECKPOINT_PERIOD",
        "100000",
        "OUTPUT_DIR",
        str(output_dir),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    with open(tmp_path / "out.txt", "w") as out:
        # A session of its own: the group signal must not reach pytest.
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_iteration(output_dir / "metrics.json", process, 19)  # the first writer period
        os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log = (tmp_path / "out.txt").read_text()
    assert code == 128 + signal.SIGTERM, log[-4000:]
    checkpoint = (output_dir / "last_checkpoint").read_text()
    stopped_at = int(checkpoint[len("model_") : -len(".pth")])
    assert stopped_at >= 19 and f"stopped by SIGTERM after iteration {stopped_at}" in log
    _assert_group_empties(process.pid)  # no loader worker outlives the trainer


def _assert_group_empties(pgid, within=15.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes of group {pgid} (loader workers) outlived the trainer")
