"""The thread budget: how many compute threads each usvid process starts on the CPU.

PyTorch starts as many intra-op threads as the machine has cores, in every process. Its OpenMP
parallel regions split the work statically and wait for the slowest thread, so a process whose
threads outnumber the cores it actually gets stalls whenever one of them is descheduled: next to
one busy process the phantom UltraDet streamed at 2.5-13 FPS instead of 80, and two training
processes on two cores (``--num-gpus 2``, each with 2 threads and 2 loader workers) ran 8x slower
than one (issue 16). The budget therefore:

* divides the usable cores (usvid.utils.cpu_limits: CPU affinity mask and cgroup quota, not
  ``os.cpu_count()``) among the processes launch() started on this machine;
* lets a training process keep room for its data-loader workers: up to a quarter of its share,
  one core per worker. Below four cores nothing is kept back, because the phantom's workers are
  idle most of a step (they only decode a few small frames) and a core taken from the trainer
  would cost far more than the short overlaps do;
* runs streaming inference on one core fewer than the machine's share (at least 1) while another
  program keeps a core of this process's CPUs busy, and on the whole share while they idle
  (usvid.utils.thread_governor measures the load as it streams): a live-scanner stream must keep
  its frame rate when another program takes a core, where one thread more buys less than a
  descheduled thread costs, but on a quiet machine one core fewer cost 23 % of the frame rate.
  Under a binding cgroup quota the count stays at one core fewer: idle CPUs of the host do not
  raise the quota;
* leaves data-loader workers at one thread each, as PyTorch's DataLoader starts them (usvid's
  worker_init_fn does the same for OpenCV): they run in parallel already.

``CPU_THREADS`` (> 0) in the config, else the environment's ``OMP_NUM_THREADS``, fixes the count
of both training and streaming instead (no adaptation); the log line says what was chosen and why.
"""

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Union

import torch

from ..config.config import ConfigError
from .cpu_limits import CpuLimit, available_cores
from .cpu_load import OtherProgramsLoad
from .thread_governor import FixedStreamingThreads, StreamingThreadGovernor

__all__ = [
    "ThreadBudget",
    "plan_thread_budget",
    "apply_thread_budget",
    "apply_process_share",
    "current_thread_budget",
    "streaming_threads",
]

ENV_THREADS = "OMP_NUM_THREADS"

logger = logging.getLogger(__name__)

_current: Optional["ThreadBudget"] = None  # the budget apply_thread_budget() set in this process


@dataclass(frozen=True)
class ThreadBudget:
    """Intra-op threads of this process while training and during streaming inference: streaming
    runs on ``streaming`` threads while other programs keep a core busy and on ``streaming_quiet``
    while they leave the cores idle (the same count where it does not adapt)."""

    training: int
    streaming: int
    streaming_quiet: int
    reason: str

    def describe(self) -> str:
        quiet = f", {self.streaming_quiet} while other programs idle" if self.adapts_streaming else ""
        return (
            f"CPU threads: {self.training} for training, {self.streaming} for streaming inference{quiet} "
            f"({self.reason})"
        )

    @property
    def adapts_streaming(self) -> bool:
        """Whether streaming follows the other programs' load (usvid.utils.thread_governor)."""
        return self.streaming_quiet != self.streaming


def process_share(cores: int, local_processes: int) -> int:
    """The cores of one of ``local_processes`` processes sharing ``cores`` (at least 1)."""
    return max(1, cores // max(1, local_processes))


def training_threads(share: int, loader_workers: int) -> int:
    """A training process's share less the room kept for its loader workers: one core per
    worker, at most a quarter of the share (none below 4 cores); at least 1."""
    return max(1, share - min(loader_workers, share // 4))


def streaming_thread_count(cores: int, local_processes: int) -> int:
    """One core of the machine left for other work, the rest shared by the local processes."""
    return max(1, (cores - 1) // max(1, local_processes))


def plan_thread_budget(
    limit: CpuLimit,
    local_processes: int = 1,
    loader_workers: int = 0,
    cpu_threads: int = 0,
    env_threads: Optional[str] = None,
) -> ThreadBudget:
    """The budget of one of ``local_processes`` processes on a machine with ``limit``.

    ``cpu_threads`` is the config's CPU_THREADS (0 = automatic) and ``env_threads`` the value of
    OMP_NUM_THREADS (None when unset); either fixes the thread count, the config first."""
    if not isinstance(cpu_threads, int) or cpu_threads < 0:
        raise ConfigError(f"CPU_THREADS is {cpu_threads!r}; use 0 (automatic) or a number of threads >= 1")
    if cpu_threads > 0:
        return ThreadBudget(
            cpu_threads, cpu_threads, cpu_threads, f"CPU_THREADS {cpu_threads} in the config; {limit.describe()}"
        )
    fixed = _parse_env_threads(env_threads)
    if fixed is not None:
        return ThreadBudget(fixed, fixed, fixed, f"{ENV_THREADS}={env_threads} in the environment; {limit.describe()}")
    share = process_share(limit.cores, local_processes)
    training = training_threads(share, loader_workers)
    streaming = streaming_thread_count(limit.cores, local_processes)
    quota_binds = limit.quota_cores is not None and limit.quota_cores < limit.affinity_cpus
    streaming_quiet = streaming if quota_binds else share
    kept = share - training
    streaming_rule = "streaming leaves one core of the machine for other programs"
    if streaming_quiet != streaming:
        streaming_rule += " while they keep one busy"
    elif quota_binds and share != streaming:
        streaming_rule += " at all times (a cgroup quota binds, and idle CPUs do not raise it)"
    reason = (
        f"automatic: {limit.describe()}; {local_processes} process(es) on this machine -> {share} core(s) "
        f"each; training keeps {kept} of them for its {loader_workers} loader worker(s) (one thread each); "
        f"{streaming_rule}. Set CPU_THREADS or {ENV_THREADS} to choose"
    )
    return ThreadBudget(training, streaming, streaming_quiet, reason)


def _parse_env_threads(value: Optional[str]) -> Optional[int]:
    """OMP_NUM_THREADS as a count (its first entry for a nested list such as "4,2"); None when
    unset or empty, an error naming it when it is not a whole number >= 1."""
    if value is None or not value.strip():
        return None
    first = value.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ConfigError(
            f"{ENV_THREADS}={value!r} in the environment is not a number of threads; "
            f"set a whole number >= 1 or unset it"
        )
    return int(first)


def apply_thread_budget(
    cpu_threads: int = 0, loader_workers: int = 0, local_processes: int = 1, limit: Optional[CpuLimit] = None
) -> ThreadBudget:
    """Plan this process's budget (see :func:`plan_thread_budget`), set torch's intra-op
    threads to its training count, remember it for :func:`streaming_threads` and log it."""
    global _current
    budget = plan_thread_budget(
        limit or available_cores(), local_processes, loader_workers, cpu_threads, os.environ.get(ENV_THREADS)
    )
    torch.set_num_threads(budget.training)
    _current = budget
    logger.info(budget.describe())
    return budget


def apply_process_share(local_processes: int) -> None:
    """For a process launch() started: its share of the usable cores, until default_setup
    applies the whole budget (with the config's CPU_THREADS and loader workers). Without it the
    processes would build their models and loaders with a thread per core each. Nothing
    changes when OMP_NUM_THREADS is set: OpenMP has read it already."""
    if _parse_env_threads(os.environ.get(ENV_THREADS)) is None:
        torch.set_num_threads(process_share(available_cores().cores, local_processes))


def current_thread_budget() -> Optional[ThreadBudget]:
    """The budget apply_thread_budget() set in this process, None before."""
    return _current


@contextlib.contextmanager
def streaming_threads() -> Iterator[Union[StreamingThreadGovernor, FixedStreamingThreads]]:
    """Inside: torch's intra-op threads at the budget's streaming count, and what to ``step()``
    once a frame: where the budget adapts and the CPU load counters can be read, a governor that
    moves between that count and the full share with the other programs' load. The previous
    count is restored on exit. Without a budget applied in this process (a library caller that
    never ran default_setup) the thread count stays as the caller set it."""
    previous = torch.get_num_threads()
    wanted = _current.streaming if _current is not None else previous
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield _streaming_governor(_current)
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _streaming_governor(budget: Optional[ThreadBudget]) -> Union[StreamingThreadGovernor, FixedStreamingThreads]:
    if budget is None or not budget.adapts_streaming:
        return FixedStreamingThreads()
    others_load = OtherProgramsLoad()
    if others_load.cpus is None:
        logger.info(f"Streaming inference stays on {budget.streaming} thread(s): no CPU load counters to read")
        return FixedStreamingThreads()
    return StreamingThreadGovernor(budget.streaming_quiet, budget.streaming, others_load.cpus, others_load)
