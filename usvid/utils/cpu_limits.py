"""How many CPU cores this process can actually use.

``os.cpu_count()`` counts the machine's CPUs, but a process may be confined to fewer: by its CPU
affinity mask (``taskset``, Slurm's ``--cpus-per-task``, a cpuset cgroup) or by a cgroup CPU
quota (Docker's ``--cpus``, Kubernetes CPU limits), which lets its threads run for only
``quota / period`` CPU-seconds per second and then stalls all of them until the next period.
Starting more compute threads than that makes every parallel region wait for threads that are
descheduled or throttled; usvid.utils.cpu_budget sizes its thread pools from
:func:`available_cores` instead.

The cgroup quota is found like the JVM and Go runtimes find it: the process's cgroup (from
``/proc/self/cgroup``) is located under the cgroup mounts (``/proc/self/mountinfo``), and the
tightest limit on the way from that cgroup up to the mount's root applies (a child cgroup
cannot use more than its parents allow). Both cgroup v2 (``cpu.max``) and v1
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) are read; the paths are parameters so that tests
can build a cgroup tree in a temporary folder.
"""

import math
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

__all__ = ["CpuLimit", "available_cores", "cgroup_cpu_quota", "affinity_cpu_count"]


@dataclass(frozen=True)
class CpuLimit:
    """The usable cores and what limited them."""

    cores: int  # usable cores: min(affinity CPUs, whole cores of the quota), at least 1
    affinity_cpus: int  # CPUs in the affinity mask (os.cpu_count() where there is no mask)
    quota_cores: Optional[float]  # the cgroup quota in cores; None when there is none
    quota_source: str  # the file that set the quota ("" when there is none)

    def describe(self) -> str:
        """E.g. '2 usable cores (affinity mask: 4 CPUs; cgroup quota 2.5 cores in /sys/...)'."""
        quota = (
            f"cgroup quota {self.quota_cores:g} cores in {self.quota_source}"
            if self.quota_cores is not None
            else "no cgroup CPU quota"
        )
        return f"{self.cores} usable core(s) (affinity mask: {self.affinity_cpus} CPU(s); {quota})"


def affinity_cpu_count() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (Linux), else all."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def available_cores(proc_root: str = "/proc", affinity_cpus: Optional[int] = None) -> CpuLimit:
    """The cores this process can use: the affinity mask, lowered to the whole cores of the cgroup
    quota (rounded down, at least 1: a thread more than the quota allows is throttled at the end
    of every period, stalling its siblings, while the fraction left over still serves the
    process's other work, e.g. its data-loader workers)."""
    affinity = affinity_cpu_count() if affinity_cpus is None else affinity_cpus
    quota = cgroup_cpu_quota(proc_root)
    cores = affinity
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota[0] + 1e-9)))
    return CpuLimit(
        cores=cores,
        affinity_cpus=affinity,
        quota_cores=quota[0] if quota else None,
        quota_source=quota[1] if quota else "",
    )


def cgroup_cpu_quota(proc_root: str = "/proc") -> Optional[Tuple[float, str]]:
    """(cores, file) of the tightest cgroup CPU quota on this process, or None without one
    (also where /proc or the cgroup files cannot be read: no limit is then assumed)."""
    try:
        memberships = _read_lines(os.path.join(proc_root, "self", "cgroup"))
        mounts = _read_lines(os.path.join(proc_root, "self", "mountinfo"))
    except OSError:
        return None
    limits = [
        limit
        for folder, mount_point, version in _cpu_cgroup_folders(memberships, mounts)
        for limit in _quotas_up_the_tree(folder, mount_point, version)
    ]
    return min(limits, default=None)


def _read_lines(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _cpu_cgroup_folders(memberships: Sequence[str], mounts: Sequence[str]) -> Iterator[Tuple[str, str, int]]:
    """(this process's cgroup folder, the mount point above which not to look, version) for the
    cgroup v2 hierarchy and the v1 hierarchy with the cpu controller, where mounted."""
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy_id, controllers, path = parts
        version = 2 if hierarchy_id == "0" and controllers == "" else 1
        if version == 1 and "cpu" not in controllers.split(","):
            continue
        for mount_root, mount_point in _cgroup_mounts(mounts, version):
            folder = _folder_below_mount(path, mount_root, mount_point)
            if folder is not None:
                yield folder, mount_point, version
                break


def _cgroup_mounts(mounts: Sequence[str], version: int) -> Iterator[Tuple[str, str]]:
    """(root inside the hierarchy, mount point) of each cgroup v2 mount, or of each v1 mount that
    carries the cpu controller. A mountinfo line reads: ID PARENT MAJ:MIN ROOT MOUNT_POINT
    OPTIONS [OPTIONAL FIELDS...] - FSTYPE SOURCE SUPER_OPTIONS."""
    for line in mounts:
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        fstype, super_options = fields[separator + 1], fields[separator + 3 : separator + 4]
        if version == 2 and fstype != "cgroup2":
            continue
        if version == 1 and (fstype != "cgroup" or "cpu" not in ",".join(super_options).split(",")):
            continue
        yield _unescape(fields[3]), _unescape(fields[4])


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _folder_below_mount(path: str, mount_root: str, mount_point: str) -> Optional[str]:
    """The folder of cgroup ``path`` in a mount of the hierarchy's ``mount_root`` subtree (None
    when the cgroup lies outside that subtree). In a container the mount's root is often the
    container's own cgroup, and /proc/self/cgroup then reads "/"."""
    root = mount_root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return os.path.join(mount_point, path[len(root) :].lstrip("/"))


def _quotas_up_the_tree(folder: str, mount_point: str, version: int) -> Iterator[Tuple[float, str]]:
    """(cores, file) of every quota set from ``folder`` up to ``mount_point``."""
    folder, mount_point = os.path.normpath(folder), os.path.normpath(mount_point)
    while True:
        quota = _read_quota(folder, version)
        if quota is not None:
            yield quota
        if folder == mount_point or not folder.startswith(mount_point):
            return
        folder = os.path.dirname(folder)


def _read_quota(folder: str, version: int) -> Optional[Tuple[float, str]]:
    """The quota in ``folder`` in cores, None when it has none (v2 "max", v1 -1) or no cpu files.
    A file that exists but does not parse is an error naming it: it is not a cgroup file."""
    if version == 2:
        path = os.path.join(folder, "cpu.max")
        text = _read_optional(path)
        if text is None:
            return None
        fields = text.split()
        if len(fields) != 2:
            raise ValueError(f"{path} reads {text!r}; expected '<quota> <period>' or 'max <period>'")
        quota, period = fields
        if quota == "max":
            return None
    else:
        path = os.path.join(folder, "cpu.cfs_quota_us")
        quota = _read_optional(path)
        period = _read_optional(os.path.join(folder, "cpu.cfs_period_us"))
        if quota is None or period is None or quota.strip() == "-1":
            return None
    try:
        cores = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{path}: CPU quota {quota!r} / period {period!r} are not positive integers") from None
    return (cores, path) if cores > 0 else None


def _read_optional(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None
