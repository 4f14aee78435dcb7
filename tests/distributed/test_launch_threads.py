"""launch() gives each process it starts its share of the usable cores (usvid.utils.cpu_budget),
unless OMP_NUM_THREADS chose the count: two processes on a machine no longer start a thread per
core each."""

import json

import pytest

from usvid.utils.cpu_budget import process_share
from usvid.utils.cpu_limits import available_cores

THREADS_SCRIPT = """
import json, os, sys
import torch
from usvid.engine.launch import launch
from usvid.utils import comm

def main(out_dir):
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.json"), "w") as f:
        json.dump({"threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")}, f)

if __name__ == "__main__":
    if sys.argv[1] == "unset":
        del os.environ["OMP_NUM_THREADS"]
    else:
        os.environ["OMP_NUM_THREADS"] = sys.argv[1]
    launch(main, 2, dist_url="auto", args=(os.getcwd(),))
"""


def _threads_of_the_two_ranks(run_script, tmp_path, omp_num_threads):
    result, _ = run_script(THREADS_SCRIPT, omp_num_threads)
    assert result.returncode == 0, result.stderr
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


def test_each_launched_process_gets_its_share_of_the_cores(run_script, tmp_path):
    ranks = _threads_of_the_two_ranks(run_script, tmp_path, "unset")
    expected = process_share(available_cores().cores, 2)
    assert [rank["threads"] for rank in ranks] == [expected, expected]
    assert [rank["omp"] for rank in ranks] == [None, None]


def test_omp_num_threads_is_left_alone(run_script, tmp_path):
    # A count other than the share (torch caps OMP_NUM_THREADS at the machine's cores).
    share, cores = process_share(available_cores().cores, 2), available_cores().affinity_cpus
    if share == 1 and cores == 1:
        pytest.skip("one CPU: every count is the share")
    chosen = 2 if share == 1 else 1
    ranks = _threads_of_the_two_ranks(run_script, tmp_path, str(chosen))
    assert [rank["threads"] for rank in ranks] == [chosen, chosen]
