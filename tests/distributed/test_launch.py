import json
import signal

import pytest
import torch
import torch.distributed as dist

COMM_SCRIPT = """
import itertools, json, os, sys
import torch
from usvid.checkpoint import Checkpointer
from usvid.data.samplers import TrainingSampler
from usvid.engine.launch import launch
from usvid.utils import comm

def main(out_dir):
    rank = comm.get_rank()
    torch.manual_seed(rank)  # shared_random_seed must agree although ranks' RNGs differ
    import numpy as np; np.random.seed(rank)
    comm.synchronize()
    reduced = comm.reduce_dict({"a": torch.tensor(float(rank + 1)), "b": torch.tensor(10.0 * rank)})
    sampler = TrainingSampler(7, seed=None)
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.BatchNorm1d(1))
    model[1].running_mean.fill_(rank + 0.5)  # per-rank statistics, as DDP without buffer sync keeps them
    checkpointer = Checkpointer(model, os.path.join(out_dir, "checkpoints"))
    torch.manual_seed(100 + rank)
    checkpointer.save("model")  # gathers both ranks' RNG states and buffers; rank 0 writes
    comm.synchronize()
    draw_after_save = torch.rand(1).item()
    model[1].running_mean.zero_()
    checkpointer.load(checkpointer.get_checkpoint_file())
    draw_after_load = torch.rand(1).item()
    restored_running_mean = model[1].running_mean.item()
    result = {
        "rank": rank,
        "world_size": comm.get_world_size(),
        "local_rank": comm.get_local_rank(),
        "local_size": comm.get_local_size(),
        "all_gather": comm.all_gather({"rank": rank}),
        "gather": comm.gather(rank * 2),
        "reduced": {k: v.item() for k, v in reduced.items()},
        "seed": comm.shared_random_seed(),
        "sampler_seed": sampler.seed,
        "train_indices": list(itertools.islice(iter(sampler), 10)),
        "sampler_state": sampler.state_dict(),
        "rng_draws": [draw_after_save, draw_after_load],
        "restored_running_mean": restored_running_mean,
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)

if __name__ == "__main__":
    launch(main, int(sys.argv[1]), dist_url="auto", args=(os.getcwd(),))
"""


def _check_two_rank_results(tmp_path):
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, result in enumerate(ranks):
        assert (result["rank"], result["world_size"], result["local_rank"], result["local_size"]) == (r, 2, r, 2)
        assert result["all_gather"] == [{"rank": 0}, {"rank": 1}]
    assert ranks[0]["gather"] == [0, 2] and ranks[1]["gather"] == []
    assert ranks[0]["reduced"] == {"a": 1.5, "b": 5.0}  # averaged on rank 0
    assert ranks[0]["seed"] == ranks[1]["seed"] and ranks[0]["sampler_seed"] == ranks[1]["sampler_seed"]

    # The ranks interleave one global stream: the same stream a single process would see.
    import itertools

    from usvid.data.samplers import TrainingSampler

    single = list(itertools.islice(iter(TrainingSampler(7, seed=ranks[0]["sampler_seed"])), 20))
    assert ranks[0]["train_indices"] == single[0::2] and ranks[1]["train_indices"] == single[1::2]
    assert ranks[0]["sampler_state"]["global_position"] == 20
    # Each rank gets its own RNG state back from the one checkpoint file.
    for result in ranks:
        assert result["rng_draws"][0] == result["rng_draws"][1]
    assert ranks[0]["rng_draws"][0] != ranks[1]["rng_draws"][0]
    # ... and its own buffers (the file's "model" holds rank 0's).
    assert [result["restored_running_mean"] for result in ranks] == [0.5, 1.5]


def test_launch_spawns_gloo_processes_and_comm_works(run_script, tmp_path):
    result, _ = run_script(COMM_SCRIPT, 2)
    assert result.returncode == 0, result.stderr
    _check_two_rank_results(tmp_path)


def test_torchrun_runs_the_same_script(run_script, tmp_path):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    result, _ = run_script(COMM_SCRIPT, 2, launcher=launcher)
    assert result.returncode == 0, result.stderr
    _check_two_rank_results(tmp_path)


REJOIN_SCRIPT = """
import json, os, sys
import torch.distributed as dist
from usvid.engine.launch import launch
from usvid.utils import comm

def main(out_dir):
    rank = comm.get_rank()
    first = comm.all_gather(rank)  # caches the group used for object collectives
    comm.destroy_process_groups()
    left = comm.is_dist_initialized()
    # Rejoin with the ranks swapped: a gather through the destroyed group would keep the old order.
    dist.init_process_group("gloo", init_method="file://" + os.path.join(out_dir, "store"), rank=1 - rank, world_size=2)
    second = comm.all_gather(rank + 10)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"first": first, "left": left, "second": second, "local_size": comm.get_local_size()}, f)

if __name__ == "__main__":
    launch(main, 2, dist_url="auto", args=(os.getcwd(),))
"""


def test_destroy_process_groups_lets_a_process_join_a_new_group(run_script, tmp_path):
    result, _ = run_script(REJOIN_SCRIPT)
    assert result.returncode == 0, result.stderr
    for rank in range(2):
        outcome = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert outcome == {"first": [0, 1], "left": False, "second": [11, 10], "local_size": 2}


def test_single_process_is_a_plain_call_and_comm_is_a_no_op():
    from usvid.engine.launch import launch
    from usvid.utils import comm

    calls = []
    launch(
        lambda *args: calls.append((args, comm.get_world_size(), comm.all_gather("x"), comm.gather(3))), 1, args=(1, 2)
    )
    assert calls == [((1, 2), 1, ["x"], [3])]
    assert comm.reduce_dict({"a": torch.tensor(2.0)}) == {"a": torch.tensor(2.0)}
    comm.synchronize()


FAILING_SCRIPT = """
import time
from usvid.engine.launch import launch
from usvid.utils import comm

def main():
    if comm.get_rank() == 1:
        with open("raised_at", "w") as f:
            f.write(repr(time.time()))
        raise ValueError("rank 1 exploded on purpose")
    comm.synchronize()  # rank 0 would wait here forever if nobody ended it

if __name__ == "__main__":
    try:
        launch(main, 2, dist_url="auto")
    finally:
        with open("launch_returned_at", "w") as f:
            f.write(repr(time.time()))
"""


def test_a_failing_rank_ends_the_job_with_its_error_within_seconds(run_script, tmp_path):
    result, _ = run_script(FAILING_SCRIPT)
    assert result.returncode != 0
    assert "ValueError: rank 1 exploded on purpose" in result.stderr
    assert 'in main\n    raise ValueError("rank 1 exploded on purpose")' in result.stderr  # its traceback
    # Measured from the raise, so the (load-dependent) start-up of the processes does not count.
    # Most of it is the failed process's interpreter shutdown: about a second on an idle
    # machine, up to ~15 s when 2 cores run a dozen busy processes; a hang would never end.
    raised_at, returned_at = (float((tmp_path / name).read_text()) for name in ("raised_at", "launch_returned_at"))
    assert returned_at - raised_at < 30, f"launch() took {returned_at - raised_at:.1f} s to end the job"


def test_a_preempted_rank_leaves_its_process_group_before_exiting(tmp_path):
    """A rank stopped by SIGTERM/SIGINT (TrainingPreempted) destroys its process group before it
    exits with 128 + signal, as a finished rank does: a group left to interpreter shutdown can
    abort the process (exit code -6, seen once in CI), which the launcher reports as a failure."""
    from usvid.engine.launch import _run_and_leave_group
    from usvid.engine.preemption import TrainingPreempted

    def stopped_by_sigterm():
        raise TrainingPreempted(signal.SIGTERM, 7, "stopped after iteration 7")

    dist.init_process_group("gloo", init_method="file://" + str(tmp_path / "store"), rank=0, world_size=1)
    try:
        with pytest.raises(TrainingPreempted) as stopped:
            _run_and_leave_group(stopped_by_sigterm, ())
        assert stopped.value.code == 128 + signal.SIGTERM
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
