"""The thread budget: the split of the usable cores, the CPU_THREADS / OMP_NUM_THREADS
overrides, the log line and the streaming switch. Where it takes effect is tested with its users:
tests/engine_defaults/test_thread_budget_setup.py, tests/evaluation/test_streaming_threads.py and
tests/distributed/test_launch_threads.py."""

import logging

import pytest
import torch

from usvid.config import ConfigError
from usvid.utils.cpu_budget import (
    apply_thread_budget,
    current_thread_budget,
    plan_thread_budget,
    streaming_threads,
)
from usvid.utils.cpu_limits import CpuLimit


def cores(n, affinity=None, quota=None):
    return CpuLimit(
        cores=n, affinity_cpus=affinity or n, quota_cores=quota, quota_source="/sys/fs/cgroup/cpu.max" if quota else ""
    )


pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")


@pytest.mark.parametrize(
    "limit, processes, workers, training, streaming",
    [
        # The 2-core CI machine: one process keeps both cores for training (the phantom's
        # workers are mostly idle), streaming leaves one core to whatever else runs.
        (cores(2), 1, 2, 2, 1),
        # --num-gpus 2 on 2 cores: one core each instead of 2 threads each on a shared pair.
        (cores(2), 2, 2, 1, 1),
        (cores(1), 1, 0, 1, 1),
        (cores(1), 4, 2, 1, 1),  # never below one thread
        # 4 cores: a quarter (one core) kept for the loader workers; none without workers.
        (cores(4), 1, 2, 3, 3),
        (cores(4), 1, 0, 4, 3),
        # 16 cores, 2 processes: 8 each, 2 of them for 4 workers; streaming shares 15 cores.
        (cores(16), 2, 4, 6, 7),
        (cores(16), 2, 1, 7, 7),  # one worker: one core kept, not a quarter
        # A cgroup quota of 3 cores on a 64-CPU mask: the quota counts, not the CPUs.
        (cores(3, affinity=64, quota=3.0), 1, 2, 3, 2),
    ],
)
def test_automatic_split(limit, processes, workers, training, streaming):
    budget = plan_thread_budget(limit, local_processes=processes, loader_workers=workers)
    assert (budget.training, budget.streaming) == (training, streaming)
    assert budget.reason.startswith("automatic")
    assert f"{processes} process(es)" in budget.reason and f"{workers} loader worker(s)" in budget.reason


def test_the_reason_names_the_limits_that_applied():
    budget = plan_thread_budget(cores(3, affinity=64, quota=3.5), local_processes=1, loader_workers=2)
    text = budget.describe()
    assert text.startswith("CPU threads: 3 for training, 2 for streaming inference")
    assert "64 CPU(s)" in text and "cgroup quota 3.5 cores in /sys/fs/cgroup/cpu.max" in text


def test_cpu_threads_in_the_config_overrides_the_environment_and_the_split():
    budget = plan_thread_budget(cores(2), local_processes=2, loader_workers=2, cpu_threads=3, env_threads="1")
    assert (budget.training, budget.streaming) == (3, 3)
    assert budget.reason.startswith("CPU_THREADS 3 in the config")


@pytest.mark.parametrize("value, threads", [("4", 4), (" 2 ", 2), ("4,2", 4)])
def test_omp_num_threads_overrides_the_automatic_split(value, threads):
    budget = plan_thread_budget(cores(16), local_processes=2, loader_workers=4, env_threads=value)
    assert (budget.training, budget.streaming) == (threads, threads)
    assert budget.reason.startswith(f"OMP_NUM_THREADS={value} in the environment")


def test_an_empty_omp_num_threads_counts_as_unset():
    assert plan_thread_budget(cores(2), env_threads="").reason.startswith("automatic")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_omp_num_threads_is_an_error_naming_it(value):
    with pytest.raises(ConfigError, match=rf"OMP_NUM_THREADS='{value}'.*whole number >= 1"):
        plan_thread_budget(cores(2), env_threads=value)


@pytest.mark.parametrize("value", [-1, 1.5])
def test_a_bad_cpu_threads_is_an_error_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"CPU_THREADS is .*0 \(automatic\) or a number of threads >= 1"):
        plan_thread_budget(cores(2), cpu_threads=value)


def test_apply_sets_torch_threads_logs_and_is_remembered(caplog):
    with caplog.at_level(logging.INFO, logger="usvid.utils.cpu_budget"):
        budget = apply_thread_budget(loader_workers=0, local_processes=1, limit=cores(4))
    assert torch.get_num_threads() == budget.training == 4
    assert current_thread_budget() is budget
    assert budget.describe() in caplog.text


def test_the_environment_override_is_read_when_applied(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert apply_thread_budget(limit=cores(4)).training == torch.get_num_threads() == 1


def test_streaming_threads_switches_for_the_block_and_restores():
    apply_thread_budget(loader_workers=0, limit=cores(3))  # training 3, streaming 2
    with streaming_threads():
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 3
    with pytest.raises(RuntimeError), streaming_threads():
        raise RuntimeError("a failing model")
    assert torch.get_num_threads() == 3


def test_without_a_budget_streaming_keeps_the_callers_threads():
    torch.set_num_threads(2)
    with streaming_threads():
        assert torch.get_num_threads() == 2
