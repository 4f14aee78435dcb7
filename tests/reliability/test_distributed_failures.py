"""A 2-process DDP run (launch, gloo): a rank killed with SIGKILL ends the whole job within
seconds, with the cause on the console and no process left behind; SIGTERM to the launcher
stops both ranks after the same step with one checkpoint. (An exception on one rank:
tests/distributed/test_launch.py; a NaN on one rank: tests/engine/test_distributed_nan.py.)"""

import os
import signal
import time

import torch
from process_checks import is_gone, wait_for_file

DDP_SCRIPT = """
import os, time
from toy_training import ToyTrainer, toy_cfg
from usvid.engine import HookBase, launch
from usvid.utils import comm

class WritePidAfterFiveSteps(HookBase):
    def after_step(self):
        time.sleep(0.02)
        if self.trainer.iter == 5:
            with open(f"rank{comm.get_rank()}.pid", "w") as f:
                f.write(str(os.getpid()))

def main(output_dir):
    cfg = toy_cfg(output_dir, "SOLVER.MAX_ITER", 100000, "SOLVER.CHECKPOINT_PERIOD", 100000, "TEST.EVAL_PERIOD", 0)
    trainer = ToyTrainer(cfg)
    trainer.register_hooks([WritePidAfterFiveSteps()])
    trainer.train()

if __name__ == "__main__":
    launch(main, 2, dist_url="auto", args=(os.getcwd(),))
"""


def test_a_rank_killed_by_sigkill_ends_every_rank_within_seconds(start_script, tmp_path):
    launcher = start_script(DDP_SCRIPT)
    rank_pids = [int(wait_for_file(tmp_path / f"rank{rank}.pid", launcher, timeout=180)) for rank in (0, 1)]
    killed_at = time.monotonic()
    os.kill(rank_pids[1], signal.SIGKILL)
    returncode = launcher.wait(timeout=60)
    seconds = time.monotonic() - killed_at
    assert returncode != 0
    assert seconds < 20, f"the job took {seconds:.1f} s to end after a rank was killed"
    assert all(is_gone(pid) for pid in rank_pids)
    assert "process 1 terminated with signal SIGKILL" in (tmp_path / "script.err").read_text()
    print(f"job ended {seconds:.1f} s after SIGKILL of rank 1")


def test_sigterm_to_the_launcher_stops_both_ranks_after_the_same_step_with_a_checkpoint(start_script, tmp_path):
    launcher = start_script(DDP_SCRIPT)
    rank_pids = [int(wait_for_file(tmp_path / f"rank{rank}.pid", launcher, timeout=180)) for rank in (0, 1)]
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=120) == 128 + signal.SIGTERM
    assert all(is_gone(pid) for pid in rank_pids)
    checkpoint_name = (tmp_path / "last_checkpoint").read_text()
    checkpoint = torch.load(tmp_path / checkpoint_name, weights_only=False)
    stopped_at = checkpoint["iteration"]
    assert checkpoint_name == f"model_{stopped_at:07d}.pth" and stopped_at >= 5
    assert len(checkpoint["rng_states"]) == 2  # both ranks took part in the save
    output = (tmp_path / "script.out").read_text() + (tmp_path / "script.err").read_text()
    assert f"Training stopped by SIGTERM after iteration {stopped_at}" in output and "--resume" in output
