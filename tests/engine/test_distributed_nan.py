"""A NaN loss on one rank of a 2-process gloo run raises FloatingPointError on BOTH ranks at the
same iteration (the metric all_reduce shares it), instead of leaving one rank hanging."""

import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from usvid.engine import SimpleTrainer
from usvid.utils import comm


def _batches():
    generator = torch.Generator().manual_seed(0)
    while True:
        yield (torch.randn(4, 2, generator=generator),)


def _worker(rank, port, out_dir, model_class):
    def losses(call, loss):  # NaN on rank 1 at its 3rd call, i.e. iteration 2
        if rank == 1 and call == 3:
            loss = loss * float("nan")
        return {"loss_a": loss, "loss_b": 0.5 * loss.detach()}

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = DistributedDataParallel(model_class(losses, in_features=2))
    trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    try:
        trainer.train(0, 20)
        result = "finished"
    except FloatingPointError as e:
        result = f"FloatingPointError: {e}"
    with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
        f.write(result)
    comm.destroy_process_groups()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nan_on_one_rank_raises_on_every_rank_without_hanging(scripted_loss_model, tmp_path):
    # fork: the workers inherit the imported modules, so the test takes seconds, not a re-import
    # each. That includes torch._dynamo, which the first optimizer step imports lazily (~5 s).
    import torch._dynamo  # noqa: F401

    context = mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path), scripted_loss_model), nprocs=2, join=False, start_method="fork"
    )
    deadline = time.monotonic() + 60
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("the ranks did not finish within 60 s: a rank is hanging")
    for rank in (0, 1):
        result = (tmp_path / f"rank{rank}.txt").read_text()
        assert result.startswith("FloatingPointError"), f"rank {rank}: {result}"
        assert "iteration=2" in result and "loss_a" in result and "loss_b" in result, result
    assert "nan" in (tmp_path / "rank0.txt").read_text()  # raised although rank 0's losses were finite
