"""The thread budget: the split of the usable cores, the CPU_THREADS / OMP_NUM_THREADS
overrides, where streaming adapts to the other programs' load, the log line and the streaming
switch. Where it takes effect is tested with its users:
tests/engine_defaults/test_thread_budget_setup.py, tests/evaluation/test_streaming_threads.py and
tests/distributed/test_launch_threads.py."""

import logging
import os

import pytest
import torch

from usvid.config import ConfigError
from usvid.utils import cpu_load
from usvid.utils.cpu_budget import (
    apply_thread_budget,
    current_thread_budget,
    plan_thread_budget,
    streaming_threads,
)
from usvid.utils.cpu_limits import CpuLimit
from usvid.utils.thread_governor import FixedStreamingThreads, StreamingThreadGovernor


def cores(n, affinity=None, quota=None):
    return CpuLimit(
        cores=n, affinity_cpus=affinity or n, quota_cores=quota, quota_source="/sys/fs/cgroup/cpu.max" if quota else ""
    )


pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")


@pytest.mark.parametrize(
    "limit, processes, workers, training, streaming, streaming_quiet",
    [
        # The 2-core CI machine: one process keeps both cores for training (the phantom's
        # workers are mostly idle), streaming leaves one core to whatever else runs and takes
        # both while nothing else does.
        (cores(2), 1, 2, 2, 1, 2),
        # --num-gpus 2 on 2 cores: one core each instead of 2 threads each on a shared pair.
        (cores(2), 2, 2, 1, 1, 1),
        (cores(1), 1, 0, 1, 1, 1),
        (cores(1), 4, 2, 1, 1, 1),  # never below one thread
        # 4 cores: a quarter (one core) kept for the loader workers; none without workers.
        (cores(4), 1, 2, 3, 3, 4),
        (cores(4), 1, 0, 4, 3, 4),
        # 16 cores, 2 processes: 8 each, 2 of them for 4 workers; streaming shares 15 cores.
        (cores(16), 2, 4, 6, 7, 8),
        (cores(16), 2, 1, 7, 7, 8),  # one worker: one core kept, not a quarter
        # A cgroup quota of 3 cores on a 64-CPU mask: the quota counts, not the CPUs, and idle
        # CPUs do not raise it: streaming does not adapt.
        (cores(3, affinity=64, quota=3.0), 1, 2, 3, 2, 2),
        # A quota of all 4 CPUs binds no more than the mask: streaming adapts.
        (cores(4, affinity=4, quota=4.0), 1, 0, 4, 3, 4),
    ],
)
def test_automatic_split(limit, processes, workers, training, streaming, streaming_quiet):
    budget = plan_thread_budget(limit, local_processes=processes, loader_workers=workers)
    assert (budget.training, budget.streaming, budget.streaming_quiet) == (training, streaming, streaming_quiet)
    assert budget.reason.startswith("automatic")
    assert f"{processes} process(es)" in budget.reason and f"{workers} loader worker(s)" in budget.reason


def test_the_reason_names_the_limits_that_applied():
    budget = plan_thread_budget(cores(3, affinity=64, quota=3.5), local_processes=1, loader_workers=2)
    text = budget.describe()
    assert text.startswith("CPU threads: 3 for training, 2 for streaming inference (automatic")
    assert "64 CPU(s)" in text and "cgroup quota 3.5 cores in /sys/fs/cgroup/cpu.max" in text
    assert "streaming leaves one core of the machine for other programs at all times (a cgroup quota binds" in text


def test_the_adaptive_streaming_count_is_described():
    text = plan_thread_budget(cores(2), local_processes=1, loader_workers=2).describe()
    assert text.startswith("CPU threads: 2 for training, 1 for streaming inference, 2 while other programs idle")
    assert "streaming leaves one core of the machine for other programs while they keep one busy" in text


def test_cpu_threads_in_the_config_overrides_the_environment_and_the_split():
    budget = plan_thread_budget(cores(2), local_processes=2, loader_workers=2, cpu_threads=3, env_threads="1")
    assert (budget.training, budget.streaming, budget.streaming_quiet) == (3, 3, 3)
    assert budget.reason.startswith("CPU_THREADS 3 in the config")


@pytest.mark.parametrize("value, threads", [("4", 4), (" 2 ", 2), ("4,2", 4)])
def test_omp_num_threads_overrides_the_automatic_split(value, threads):
    budget = plan_thread_budget(cores(16), local_processes=2, loader_workers=4, env_threads=value)
    assert (budget.training, budget.streaming, budget.streaming_quiet) == (threads, threads, threads)
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


def write_idle_counters(proc_root):
    """/proc/stat with idle counters for this process's CPUs: the load can be measured."""
    os.makedirs(proc_root, exist_ok=True)
    lines = "".join(f"cpu{cpu} 0 0 0 100 0 0 0 0 0 0\n" for cpu in os.sched_getaffinity(0))
    with open(os.path.join(proc_root, "stat"), "w") as f:
        f.write(lines)


@pytest.mark.parametrize(
    "limit, cpu_threads, adapts",
    [(cores(2), 0, True), (cores(2), 2, False), (cores(1), 0, False), (cores(2, affinity=4, quota=2.0), 0, False)],
)
def test_streaming_adapts_where_the_budget_does(limit, cpu_threads, adapts):
    write_idle_counters(cpu_load.PROC_ROOT)
    apply_thread_budget(cpu_threads, limit=limit)
    with streaming_threads() as threads:
        assert isinstance(threads, StreamingThreadGovernor if adapts else FixedStreamingThreads)


def test_without_load_counters_streaming_keeps_its_count(caplog):
    logger = logging.getLogger("usvid.utils.cpu_budget")
    logger.addHandler(caplog.handler)  # also where setup_logger() stopped propagation
    try:
        apply_thread_budget(limit=cores(2))  # the sandbox's /proc has no counters
        with caplog.at_level(logging.INFO, logger=logger.name), streaming_threads() as threads:
            assert isinstance(threads, FixedStreamingThreads) and torch.get_num_threads() == 1
    finally:
        logger.removeHandler(caplog.handler)
    assert "Streaming inference stays on 1 thread(s): no CPU load counters to read" in caplog.text
