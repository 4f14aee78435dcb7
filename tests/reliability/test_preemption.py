"""SIGTERM / SIGINT during training: the current step finishes, a checkpoint of it is saved,
the writers are flushed, the process exits with 128 + signal and says how to resume; a second
signal exits at once. Data-loader workers never outlive the trainer."""

import json
import signal
import time

import torch
from process_checks import is_gone, wait_for_file

# A toy DefaultTrainer fed by a torch DataLoader with 2 worker processes. Each worker writes
# its pid to worker_<pid>; after iteration MARK the script writes "marker" and, when asked,
# stalls in that step for a minute (so a second signal arrives while the first is pending).
TRAIN_SCRIPT = """
import os, sys, time
from torch.utils.data import DataLoader, IterableDataset
from toy_training import ToyTrainer, toy_cfg, toy_data
from usvid.engine import HookBase

MARK = 5

class Batches(IterableDataset):
    def __iter__(self):
        open(f"worker_{os.getpid()}", "w").close()
        x, y = toy_data()
        i = 0
        while True:
            start = (i % 8) * 8
            yield x[start:start + 8], y[start:start + 8]
            i += 1

class WorkerLoaderTrainer(ToyTrainer):
    @classmethod
    def build_train_loader(cls, cfg):
        return DataLoader(Batches(), batch_size=None, num_workers=2)

class Marker(HookBase):
    def __init__(self, stall):
        self.stall = stall

    def after_step(self):
        time.sleep(0.02)  # leave the test time to signal during training
        if self.trainer.iter == MARK:
            with open("marker", "w") as f:
                f.write(str(self.trainer.iter))
            if self.stall:
                time.sleep(60)

if __name__ == "__main__":
    max_iter, stall = int(sys.argv[1]), sys.argv[2] == "stall"
    cfg = toy_cfg(os.getcwd(), "SOLVER.MAX_ITER", max_iter, "SOLVER.CHECKPOINT_PERIOD", 100000, "TEST.EVAL_PERIOD", 0)
    trainer = WorkerLoaderTrainer(cfg)
    trainer.register_hooks([Marker(stall)])
    trainer.resume_or_load(resume="--resume" in sys.argv)
    trainer.train()
"""


def _worker_pids(tmp_path):
    return [int(p.name.split("_")[1]) for p in tmp_path.glob("worker_*")]


def _assert_workers_gone(tmp_path, within=5.0):
    pids = _worker_pids(tmp_path)
    assert len(pids) == 2, pids
    deadline = time.monotonic() + within
    while not all(is_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"data-loader workers {pids} outlived the trainer"
        time.sleep(0.1)


def test_sigterm_saves_the_reached_step_flushes_metrics_and_says_how_to_resume(start_script, tmp_path):
    process = start_script(TRAIN_SCRIPT, 100000, "run")
    wait_for_file(tmp_path / "marker", process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    _assert_workers_gone(tmp_path)

    log = (tmp_path / "script.out").read_text() + (tmp_path / "script.err").read_text()
    checkpoint_name = (tmp_path / "last_checkpoint").read_text()
    checkpoint = torch.load(tmp_path / checkpoint_name, weights_only=False)
    stopped_at = checkpoint["iteration"]
    assert checkpoint_name == f"model_{stopped_at:07d}.pth" and stopped_at >= 5
    assert f"stopped by SIGTERM after iteration {stopped_at}" in log
    assert "Resume with:" in log and "--resume" in log
    # The writers were flushed: metrics.json reaches the saved iteration.
    last_line = json.loads((tmp_path / "metrics.json").read_text().splitlines()[-1])
    assert last_line["iteration"] == stopped_at

    # The resumed run starts right after the saved step and finishes normally.
    for stale in tmp_path.glob("worker_*"):
        stale.unlink()
    resumed = start_script(TRAIN_SCRIPT, stopped_at + 3, "run", "--resume", name="resume.py")
    assert resumed.wait(timeout=120) == 0, (tmp_path / "resume.err").read_text()
    assert f"Starting training from iteration {stopped_at + 1}" in (tmp_path / "resume.out").read_text()
    _assert_workers_gone(tmp_path)


def test_a_second_signal_exits_at_once_and_kills_the_workers(start_script, tmp_path):
    process = start_script(TRAIN_SCRIPT, 100000, "stall")
    wait_for_file(tmp_path / "marker", process)  # the step now stalls for a minute
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # the first signal waits for the step to finish
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 128 + signal.SIGINT
    assert time.monotonic() - sent < 5
    assert "Second SIGINT: exiting now" in (tmp_path / "script.err").read_text()
    _assert_workers_gone(tmp_path)
    assert not (tmp_path / "last_checkpoint").exists()


ROTATION_SCRIPT = """
import os, signal, sys
from toy_training import ToyTrainer, toy_cfg
from usvid.engine import HookBase

class SignalAt(HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)

if __name__ == "__main__":
    cfg = toy_cfg(os.getcwd(), "SOLVER.MAX_ITER", 10, "SOLVER.CHECKPOINT_PERIOD", 2, "SOLVER.MAX_TO_KEEP", 2,
                  "TEST.EVAL_PERIOD", 0)
    trainer = ToyTrainer(cfg)
    trainer.register_hooks([SignalAt(int(sys.argv[1]))])
    trainer.resume_or_load(resume=True)
    trainer.train()
"""


def test_the_preemption_checkpoint_joins_the_max_to_keep_rotation(start_script, tmp_path):
    # Periodic files at iterations 1, 3, 5, ... (period 2), at most 2 kept; SIGTERM after the
    # off-period iteration 4 saves model_0000004, which the resumed run must rotate out.
    first = start_script(ROTATION_SCRIPT, 4)
    assert first.wait(timeout=120) == 128 + signal.SIGTERM, (tmp_path / "script.err").read_text()
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == ["model_0000003.pth", "model_0000004.pth"]
    resumed = start_script(ROTATION_SCRIPT, -1, name="resume.py")
    assert resumed.wait(timeout=120) == 0, (tmp_path / "resume.err").read_text()
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == [
        "model_0000007.pth",
        "model_0000009.pth",
        "model_final.pth",
    ]


FINAL_EVALUATION_SCRIPT = """
import os, sys, time
from toy_training import ToyTrainer, toy_cfg

class SlowFinalEvaluation(ToyTrainer):
    @classmethod
    def test(cls, cfg, model, evaluators=None):
        open("evaluating", "w").write("1")
        time.sleep(120)  # a signal now must stop this, not wait for it
        open("evaluated", "w").close()
        return super().test(cfg, model, evaluators)

if __name__ == "__main__":
    cfg = toy_cfg(os.getcwd(), "SOLVER.MAX_ITER", 6, "SOLVER.CHECKPOINT_PERIOD", 100000, "TEST.EVAL_PERIOD", 0)
    trainer = SlowFinalEvaluation(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
"""


def test_ctrl_c_during_the_final_evaluation_stops_it_and_keeps_the_trained_weights(start_script, tmp_path):
    process = start_script(FINAL_EVALUATION_SCRIPT)
    wait_for_file(tmp_path / "evaluating", process)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 128 + signal.SIGINT
    assert time.monotonic() - sent < 10  # the evaluation was stopped, not waited for
    assert not (tmp_path / "evaluated").exists()
    output = (tmp_path / "script.out").read_text() + (tmp_path / "script.err").read_text()
    assert "SIGINT received after the last training iteration (5): the final evaluation is skipped" in output
    assert f"kept in {tmp_path / 'model_final.pth'}" in output and "--eval-only" in output
    assert "finishing the current step" not in output  # no step was running: no such promise
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert torch.load(tmp_path / "model_final.pth", weights_only=False)["iteration"] == 5
    # The writers still flushed the training metrics; no evaluation line was written.
    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert lines[-1]["iteration"] == 5 and not any("toy/mse" in line for line in lines)
