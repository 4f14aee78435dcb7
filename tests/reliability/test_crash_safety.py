"""Crash safety of checkpoints: ``kill -9`` in the middle of a save never leaves an unloadable
``last_checkpoint``; a truncated or corrupt file is a clear error on load and ``--resume``
falls back to the newest readable checkpoint with a warning (and still resumes exactly); a
full disk while saving is an error that keeps the previous checkpoint intact."""

import errno
import json
import logging
import random
import signal
import time
from contextlib import contextmanager

import pytest
import torch
from process_checks import wait_for_file
from toy_training import ToyTrainer, toy_cfg

from usvid.checkpoint import Checkpointer, CheckpointLoadError, CheckpointSaveError
from usvid.checkpoint import checkpointer as checkpointer_module
from usvid.engine import HookBase
from usvid.utils.file_io import atomic_write

# Saves iteration 0, 1, 2, ... of a ~4 MB model in a loop. With "stall", the save of iteration
# 3 writes ~1 MB, writes "mid_write" and hangs there: the kill then lands inside the write.
SAVE_LOOP_SCRIPT = """
import sys, time
import torch
from usvid.checkpoint import Checkpointer

class StallAfterOneMegabyte:
    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, data):
        self.f.write(data)
        self.written += len(data)
        if self.written > 1_000_000:
            open("mid_write", "w").write("1")
            time.sleep(60)
        return len(data)

stall = sys.argv[1] == "stall"
real_save = torch.save
model = torch.nn.Linear(1000, 1000)
checkpointer = Checkpointer(model, "checkpoints")
for iteration in range(10**6):
    if stall and iteration == 3:
        torch.save = lambda obj, f: real_save(obj, StallAfterOneMegabyte(f))
    with torch.no_grad():
        model.bias.fill_(iteration)
    checkpointer.save(f"model_{iteration:07d}", iteration=iteration)
    if iteration == 2:
        open("saved_three", "w").write("1")
"""


def _resume_checked(save_dir):
    """Resume like --resume does; the model's bias records which iteration was saved."""
    model = torch.nn.Linear(1000, 1000)
    extra = Checkpointer(model, str(save_dir)).resume_or_load("", resume=True)
    assert torch.all(model.bias == extra["iteration"])
    return extra["iteration"]


def test_kill_9_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one(start_script, tmp_path):
    process = start_script(SAVE_LOOP_SCRIPT, "stall")
    wait_for_file(tmp_path / "mid_write", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    save_dir = tmp_path / "checkpoints"
    assert (save_dir / "last_checkpoint").read_text() == "model_0000002.pth"
    assert _resume_checked(save_dir) == 2
    # The half-written file is only a hidden temporary file, never a .pth a resume could pick.
    assert [p.name for p in save_dir.glob(".model_0000003.pth.*.tmp")] and not (save_dir / "model_0000003.pth").exists()


def test_readers_during_a_save_loop_and_a_kill_9_at_a_random_moment_always_find_a_loadable_checkpoint(
    start_script, tmp_path
):
    process = start_script(SAVE_LOOP_SCRIPT, "run")
    wait_for_file(tmp_path / "saved_three", process)
    rng = random.Random(0)
    for _ in range(3):
        time.sleep(rng.uniform(0.0, 0.3))
        last_name = (tmp_path / "checkpoints" / "last_checkpoint").read_text()
        assert _resume_checked(tmp_path / "checkpoints") >= int(last_name[6:13])
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    last_name = (tmp_path / "checkpoints" / "last_checkpoint").read_text()
    assert _resume_checked(tmp_path / "checkpoints") == int(last_name[6:13])


def _linear_checkpoints(save_dir, iterations):
    model = torch.nn.Linear(1000, 1000)
    checkpointer = Checkpointer(model, str(save_dir))
    for iteration in iterations:
        with torch.no_grad():
            model.bias.fill_(iteration)
        checkpointer.save(f"model_{iteration:07d}", iteration=iteration)
    return checkpointer


def test_resume_falls_back_to_the_newest_readable_checkpoint_with_a_warning(tmp_path, caplog):
    _linear_checkpoints(tmp_path, [1, 2, 3])
    newest = tmp_path / "model_0000003.pth"
    newest.write_bytes(newest.read_bytes()[:5000])  # truncated, e.g. by a copy or a bad disk
    with pytest.raises(CheckpointLoadError, match="model_0000003.pth.*truncated"):
        Checkpointer(torch.nn.Linear(1000, 1000)).load(str(newest))
    with caplog.at_level(logging.WARNING, logger="usvid"):
        assert _resume_checked(tmp_path) == 2
    assert "Resuming from" in caplog.text and "model_0000002.pth" in caplog.text

    (tmp_path / "last_checkpoint").write_text("model_9999999.pth")  # names a file that is gone
    assert _resume_checked(tmp_path) == 2


def test_resume_with_no_readable_checkpoint_lists_every_file_tried(tmp_path):
    _linear_checkpoints(tmp_path, [1, 2])
    for path in tmp_path.glob("*.pth"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointLoadError) as error:
        _resume_checked(tmp_path)
    assert "model_0000001.pth" in str(error.value) and "model_0000002.pth" in str(error.value)


class DiskFullAfter:
    """A file object standing in for a disk that fills up after ``capacity`` bytes."""

    def __init__(self, f, capacity):
        self.f, self.capacity = f, capacity

    def write(self, data):
        if len(data) > self.capacity:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.capacity -= len(data)
        return self.f.write(data)


def test_full_disk_while_saving_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpointer = _linear_checkpoints(tmp_path, [1])
    before = (tmp_path / "model_0000001.pth").read_bytes()

    @contextmanager
    def atomic_write_on_a_full_disk(path, mode="wb"):
        with atomic_write(path, mode) as f:
            yield DiskFullAfter(f, capacity=100_000)

    monkeypatch.setattr(checkpointer_module, "atomic_write", atomic_write_on_a_full_disk)
    with pytest.raises(CheckpointSaveError) as error:
        checkpointer.save("model_0000002", iteration=2)
    assert error.value.errno == errno.ENOSPC
    message = str(error.value)
    assert "model_0000002.pth" in message and "No space left on device" in message and "ENOSPC" in message
    assert "previous checkpoint is intact" in message and "model_0000001.pth" in message
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]  # no temp file
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert _resume_checked(tmp_path) == 1


class StopAfter(HookBase):
    def __init__(self, last):
        self.last = last

    def after_step(self):
        self.trainer.should_stop = self.trainer.iter == self.last


def _metrics(output_dir):
    lines = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("time", "data_time")} for line in lines]


def test_a_run_resumed_past_a_corrupt_checkpoint_still_equals_the_uninterrupted_run(tmp_path):
    overrides = ("SOLVER.MAX_ITER", 30, "SOLVER.CHECKPOINT_PERIOD", 10, "TEST.EVAL_PERIOD", 0)
    full = ToyTrainer(toy_cfg(tmp_path / "full", *overrides))
    full.train()

    crashed_dir = tmp_path / "crashed"
    first = ToyTrainer(toy_cfg(crashed_dir, *overrides))
    first.register_hooks([StopAfter(19)])
    first.train()  # stands in for a run killed after its checkpoint of iteration 19...
    (crashed_dir / "model_final.pth").unlink()  # ...which a stop by a hook also saves as final
    (crashed_dir / "last_checkpoint").write_text("model_0000019.pth")
    broken = crashed_dir / "model_0000019.pth"
    broken.write_bytes(broken.read_bytes()[:1000])

    resumed = ToyTrainer(toy_cfg(crashed_dir, *overrides))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 10  # fell back to model_0000009.pth
    resumed.train()
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert _metrics(crashed_dir) == _metrics(tmp_path / "full")  # the repeated lines are not duplicated
