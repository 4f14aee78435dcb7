"""Training across machines, proved on localhost: two processes started as two "machines"
(``--num-machines 2 --machine-rank 0|1 --dist-url tcp://...``) and two ``torchrun --nnodes 2``
agents meeting at a c10d rendezvous both train bitwise the weights of ``--num-gpus 2`` on one
machine; a machine that dies ends the other within seconds with an error naming the lost rank."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from toy_scripts import script_env, write_script

TRAIN_SCRIPT = """
import os, time
from toy_training import ToyTrainer, toy_cfg
from usvid.engine import HookBase, default_argument_parser, launch
from usvid.utils import comm

class WritePid(HookBase):
    def after_step(self):
        if self.trainer.iter == 3:
            with open(f"rank{comm.get_rank()}.pid", "w") as f:
                f.write(str(os.getpid()))

def main(args):
    # Dropout off: each rank draws its own masks, which only a deterministic model tolerates.
    cfg = toy_cfg(".", "TOY.DROPOUT", 0.0, "SOLVER.MAX_ITER", 8, "TEST.EVAL_PERIOD", 0, "DATASETS.TEST", "()",
                  *args.opts)
    trainer = ToyTrainer(cfg)
    trainer.register_hooks([WritePid()])
    trainer.resume_or_load(resume=False)
    trainer.train()

if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
"""
TORCHRUN = ("-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path, *args, launcher=(), log="run", new_session=False):
    """Start the training script as one machine would (its own process group with
    ``new_session``, so that the whole "machine" can be killed at once)."""
    script = write_script(tmp_path, "train.py", TRAIN_SCRIPT)
    env = script_env()
    with open(tmp_path / f"{log}.out", "w") as out:
        return subprocess.Popen(
            [sys.executable, *launcher, str(script), *map(str, args)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def _finish(processes, tmp_path, timeout=240):
    for name, process in processes.items():
        code = process.wait(timeout=timeout)
        assert code == 0, f"{name} exited with {code}:\n" + (tmp_path / f"{name}.out").read_text()[-4000:]


def _weights(path):
    checkpoint = torch.load(path, weights_only=False)
    assert len(checkpoint["rng_states"]) == 2  # a two-rank run
    return checkpoint["model"]


@pytest.fixture(scope="module")
def two_local_processes(tmp_path_factory):
    """model_final.pth of ``--num-gpus 2`` on one machine, the reference."""
    tmp_path = tmp_path_factory.mktemp("one_machine")
    _finish({"run": _start(tmp_path, "--num-gpus", 2, "OUTPUT_DIR", "out")}, tmp_path)
    return _weights(tmp_path / "out" / "model_final.pth")


def _assert_same_weights(weights, reference):
    assert weights.keys() == reference.keys()
    for name in reference:
        assert torch.equal(weights[name], reference[name]), name


def test_two_machines_train_the_weights_of_two_local_processes(tmp_path, two_local_processes):
    url = f"tcp://127.0.0.1:{_free_port()}"
    machines = {
        f"machine{rank}": _start(
            tmp_path,
            "--num-machines",
            2,
            "--machine-rank",
            rank,
            "--dist-url",
            url,
            "OUTPUT_DIR",
            "out",
            log=f"machine{rank}",
        )
        for rank in (0, 1)
    }
    _finish(machines, tmp_path)
    _assert_same_weights(_weights(tmp_path / "out" / "model_final.pth"), two_local_processes)


def test_two_torchrun_nodes_train_the_weights_of_two_local_processes(tmp_path, two_local_processes):
    rendezvous = ("--rdzv_endpoint", f"127.0.0.1:{_free_port()}", "--rdzv_id", "usvid-test")
    nodes = {
        f"node{n}": _start(tmp_path, "OUTPUT_DIR", "out", launcher=TORCHRUN + rendezvous, log=f"node{n}")
        for n in (0, 1)
    }
    _finish(nodes, tmp_path)
    _assert_same_weights(_weights(tmp_path / "out" / "model_final.pth"), two_local_processes)


def test_a_machine_that_dies_ends_the_other_within_seconds_naming_the_lost_rank(tmp_path):
    url = f"tcp://127.0.0.1:{_free_port()}"
    args = ("--num-machines", 2, "--dist-url", url, "OUTPUT_DIR", "out", "SOLVER.MAX_ITER", 100000)
    survivor = _start(tmp_path, "--machine-rank", 0, *args, log="machine0")
    doomed = _start(tmp_path, "--machine-rank", 1, *args, log="machine1", new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "rank1.pid").exists() or not (tmp_path / "rank1.pid").read_text():
            assert time.monotonic() < deadline and survivor.poll() is None and doomed.poll() is None
            time.sleep(0.1)
        os.killpg(doomed.pid, signal.SIGKILL)  # the whole "machine": its launcher and its worker
        killed_at = time.monotonic()
        code = survivor.wait(timeout=60)
        seconds = time.monotonic() - killed_at
    finally:
        for process in (survivor, doomed):
            if process.poll() is None:
                process.kill()
            process.wait()
    output = (tmp_path / "machine0.out").read_text()
    assert code != 0
    # About 2 s on an idle machine; the bound leaves room for a CI machine running other tests.
    assert seconds < 30, f"machine 0 took {seconds:.1f} s to end after machine 1 died"
    assert "LostRanksError: Rank 0 stopped: lost rank 1 (127.0.0.1), whose process ended" in output
    print(f"machine 0 ended {seconds:.1f} s after machine 1 was killed")
