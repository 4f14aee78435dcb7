"""How busy the other programs keep this process's CPUs.

Streaming inference may use every core of its share only while nothing else runs on them: an
OpenMP thread that another program pushes off its core stalls all of its siblings (issue 16).
:class:`OtherProgramsLoad` measures that load from the kernel's CPU counters: the busy time of
the CPUs in this process's affinity mask (``/proc/stat``) less this process's own CPU time
(``/proc/self/stat``), so that our own threads, spin-waiting ones included, never count as
"others". Child processes do count: the data-loader workers compete for the same cores as the
compute threads (the phantom's take about 1.5 ms of CPU a frame, a twentieth of a core at 38
FPS). Both files count clock ticks (USER_HZ), and the ``/proc`` root is a parameter so that tests
can write fake counters in a folder.
"""

import os
from dataclasses import dataclass
from typing import Iterable, Optional

__all__ = ["CpuTimes", "read_cpu_times", "others_busy_cores", "OtherProgramsLoad", "PROC_ROOT"]

PROC_ROOT = "/proc"  # where OtherProgramsLoad reads by default (tests point it at fake counters)


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative clock ticks on a set of CPUs at one moment."""

    busy: int  # ticks the CPUs ran anything (user, nice, system, irq, softirq, steal)
    total: int  # busy plus idle and iowait ticks, summed over the CPUs
    own: int  # ticks this process ran (all its threads, user and system time)
    cpus: int  # CPUs counted (those of the set that /proc/stat lists)


def read_cpu_times(cpus: Iterable[int], proc_root: str = "/proc") -> Optional[CpuTimes]:
    """The counters of ``cpus`` now; None when /proc/stat cannot be read or lists none of them."""
    wanted = {f"cpu{cpu}" for cpu in cpus}
    busy = total = counted = 0
    try:
        with open(os.path.join(proc_root, "stat"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if not fields or fields[0] not in wanted:
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
        # part of user and nice, so only the first eight fields add up to the elapsed ticks.
        ticks = [int(value) for value in fields[1:9]]
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
        counted += 1
    if counted == 0:
        return None
    return CpuTimes(busy=busy, total=total, own=_own_ticks(proc_root), cpus=counted)


def _own_ticks(proc_root: str) -> int:
    """utime + stime of /proc/self/stat (0 where it cannot be read), which reads
    'PID (COMM) STATE PPID ...' with utime as its 14th field; COMM may hold spaces and brackets."""
    try:
        with open(os.path.join(proc_root, "self", "stat"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return 0
    after_comm = text[text.rindex(")") + 1 :].split()
    return int(after_comm[11]) + int(after_comm[12])


def others_busy_cores(before: CpuTimes, after: CpuTimes) -> Optional[float]:
    """Cores the other programs kept busy between two readings, on average (0 = none, 1.0 = one
    whole core); None when no time passed on the counters."""
    elapsed_per_cpu = (after.total - before.total) / max(1, after.cpus)
    if elapsed_per_cpu <= 0:
        return None
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / elapsed_per_cpu)


class OtherProgramsLoad:
    """Each call: the cores other programs kept busy on this process's CPUs since the previous
    call, or since it was made (None where the counters cannot be read)."""

    def __init__(self, proc_root: Optional[str] = None, cpus: Optional[Iterable[int]] = None):
        if cpus is None:
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
        self._cpus = sorted(cpus)
        self._proc_root = PROC_ROOT if proc_root is None else proc_root
        self._last = read_cpu_times(self._cpus, self._proc_root)

    @property
    def cpus(self) -> Optional[int]:
        """CPUs measured; None where the counters cannot be read (no load is ever reported)."""
        return self._last.cpus if self._last is not None else None

    def __call__(self) -> Optional[float]:
        if self._last is None:
            return None
        now = read_cpu_times(self._cpus, self._proc_root)
        if now is None:
            return None
        before, self._last = self._last, now
        return others_busy_cores(before, now)
