"""A run folder never loses a model: a new run moves the earlier run aside (default_setup before
it writes anything, DefaultTrainer.resume_or_load for runs built in Python), a second live run
is refused while a crashed one leaves nothing stuck, and files follow the user's umask."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from toy_training import ToyTrainer, toy_cfg

from usvid.checkpoint import Checkpointer
from usvid.config import ConfigError
from usvid.engine import RunFolderInUseError, RunFolderLock, default_argument_parser, default_setup

QUICK = ("SOLVER.MAX_ITER", 4, "SOLVER.CHECKPOINT_PERIOD", 2, "TEST.EVAL_PERIOD", 0, "DATASETS.TEST", "()")


def _train(cfg):
    trainer = ToyTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer


def test_a_new_run_moves_the_whole_earlier_run_aside_before_writing_anything(tmp_path):
    cfg = toy_cfg(tmp_path, *QUICK)
    default_setup(cfg, default_argument_parser().parse_args([]))
    _train(cfg)
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "predictions.json").write_text("{}")  # an application's evaluation output
    first_weights = (tmp_path / "model_final.pth").read_bytes()

    second = toy_cfg(tmp_path, *QUICK, "SOLVER.BASE_LR", 0.01)
    default_setup(second, default_argument_parser().parse_args([]))
    (archive,) = tmp_path.glob("previous_run_*")
    assert (archive / "model_final.pth").read_bytes() == first_weights
    assert {
        "model_0000001.pth",
        "last_checkpoint",
        "metrics.json",
        "config.yaml",
        "command.txt",
        "log.txt",
        "inference",
    } <= {p.name for p in archive.iterdir()}
    assert "BASE_LR: 0.05" in (archive / "config.yaml").read_text()
    # Left in the folder: the new run's own files. (Its log.txt appears in a new process; this
    # process's log stream moved along with the earlier run's file.)
    left = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert (
        {"command.txt", "config.yaml", archive.name} <= left <= {"command.txt", "config.yaml", "log.txt", archive.name}
    )
    assert "BASE_LR: 0.01" in (tmp_path / "config.yaml").read_text()
    _train(second)  # the new run's checkpoints and metrics start afresh
    assert (archive / "model_final.pth").read_bytes() == first_weights


def test_a_resumed_run_or_an_evaluation_moves_nothing(tmp_path):
    _train(toy_cfg(tmp_path, *QUICK))
    before = sorted(p.name for p in tmp_path.iterdir())
    default_setup(toy_cfg(tmp_path, *QUICK), default_argument_parser().parse_args(["--resume"]))
    default_setup(toy_cfg(tmp_path, *QUICK), default_argument_parser().parse_args(["--eval-only"]))
    assert not list(tmp_path.glob("previous_run_*"))
    assert set(before) <= {p.name for p in tmp_path.iterdir()}


def test_a_new_run_from_weights_inside_the_earlier_run_is_refused_with_what_to_do(tmp_path):
    _train(toy_cfg(tmp_path, *QUICK))
    cfg = toy_cfg(tmp_path, *QUICK, "MODEL.WEIGHTS", tmp_path / "model_final.pth")
    with pytest.raises(ConfigError, match="MODEL.WEIGHTS .*model_final.pth lies in OUTPUT_DIR .*--resume"):
        default_setup(cfg, default_argument_parser().parse_args([]))
    assert (tmp_path / "model_final.pth").exists() and not list(tmp_path.glob("previous_run_*"))


def test_the_working_folder_is_never_moved_aside(tmp_path, monkeypatch):
    _train(toy_cfg(tmp_path, *QUICK))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="OUTPUT_DIR \\. holds an earlier run.*working folder"):
        default_setup(toy_cfg(".", *QUICK), default_argument_parser().parse_args([]))
    assert (tmp_path / "model_final.pth").exists()


HOLD_LOCK = """
import sys, time
from usvid.engine import RunFolderLock
RunFolderLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_live_run_is_refused_and_a_killed_one_leaves_nothing_stuck(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_LOCK), str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            RunFolderInUseError, match=f"in use by another run that is still alive \\(pid {holder.pid} "
        ):
            ToyTrainer(toy_cfg(tmp_path, *QUICK))
        assert issubclass(RunFolderInUseError, ConfigError)  # the tools end it with exit code 2
    finally:
        holder.kill()
        holder.wait()
    _train(toy_cfg(tmp_path, *QUICK))  # the killed run's lock went with its process
    assert (tmp_path / "model_final.pth").exists()


def test_train_net_in_a_folder_of_a_live_run_ends_with_exit_code_2_naming_it(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS="1")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_LOCK), str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        tool = subprocess.run(
            [
                sys.executable,
                "tools/train_net.py",
                "--config-file",
                "configs/phantom/ultradet.yaml",
                "MODEL.DEVICE",
                "cpu",
                "OUTPUT_DIR",
                str(tmp_path),
            ],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert tool.returncode == 2, tool.stderr[-3000:]
    assert f"error: OUTPUT_DIR {tmp_path} is in use by another run that is still alive (pid {holder.pid}" in tool.stderr


def test_the_lock_is_reentrant_within_a_process_and_released_by_its_last_holder(tmp_path):
    first, second = RunFolderLock(tmp_path), RunFolderLock(tmp_path)
    first.acquire()
    second.acquire()
    first.release()
    probe = [
        sys.executable,
        "-c",
        f"from usvid.engine import RunFolderLock; RunFolderLock({str(tmp_path)!r}).acquire()",
    ]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    assert subprocess.run(probe, env=env, capture_output=True).returncode != 0  # still held by `second`
    second.release()
    assert subprocess.run(probe, env=env, capture_output=True).returncode == 0


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        Checkpointer(torch.nn.Linear(2, 2), str(tmp_path)).save("model_final")
        default_setup(toy_cfg(tmp_path / "run", *QUICK), default_argument_parser().parse_args(["--eval-only"]))
    finally:
        os.umask(previous)
    for path in (tmp_path / "model_final.pth", tmp_path / "last_checkpoint", tmp_path / "run" / "config.yaml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
