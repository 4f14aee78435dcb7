"""available_cores(): the CPU affinity mask and the cgroup v1 / v2 CPU quota.

Each cgroup test writes what Linux shows a process (/proc/self/cgroup, /proc/self/mountinfo and
the cgroup files under the mount point) into a temporary folder, laid out as in a Docker or
Kubernetes container, a systemd slice, or a host with the v1 and v2 hierarchies side by side."""

import os

import pytest

from usvid.utils.cpu_limits import available_cores, cgroup_cpu_quota


def _mount_line(mount_root, mount_point, fstype, super_options):
    escaped = str(mount_point).replace(" ", "\\040")
    return f"31 23 0:28 {mount_root} {escaped} rw,nosuid,relatime shared:9 - {fstype} cgroup {super_options}"


def fake_proc(tmp_path, memberships, mounts):
    """A /proc with this process's cgroup memberships and mount table; returns its path."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("\n".join(memberships) + "\n")
    (proc / "self" / "mountinfo").write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" + "\n".join(mounts) + "\n"
    )
    return str(proc)


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text + "\n")


def test_v2_container_quota_of_one_and_a_half_cores_gives_one_core(tmp_path):
    cgroup = tmp_path / "sys" / "fs" / "cgroup"
    write(cgroup, "cpu.max", "150000 100000")
    proc = fake_proc(tmp_path, ["0::/"], [_mount_line("/", cgroup, "cgroup2", "rw,nsdelegate")])
    limit = available_cores(proc, affinity_cpus=8)
    assert limit.quota_cores == pytest.approx(1.5)
    assert limit.cores == 1  # whole cores only: a second thread would be throttled every period
    assert limit.quota_source == str(cgroup / "cpu.max")
    assert "cgroup quota 1.5 cores" in limit.describe() and "8 CPU(s)" in limit.describe()


def test_v2_the_tightest_quota_on_the_way_up_applies(tmp_path):
    cgroup = tmp_path / "cgroup"
    write(cgroup / "batch.slice", "cpu.max", "300000 100000")
    write(cgroup / "batch.slice" / "job-7", "cpu.max", "max 100000")  # the job itself has no limit
    write(cgroup / "batch.slice" / "job-7" / "step", "cpu.max", "max 100000")
    write(cgroup, "cpu.max", "100000 100000")  # the hierarchy's root (the mount point) limits all
    proc = fake_proc(tmp_path, ["0::/batch.slice/job-7/step"], [_mount_line("/", cgroup, "cgroup2", "rw")])
    assert cgroup_cpu_quota(proc) == (1.0, str(cgroup / "cpu.max"))
    (cgroup / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(proc) == (3.0, str(cgroup / "batch.slice" / "cpu.max"))
    assert available_cores(proc, affinity_cpus=2).cores == 2  # the affinity mask is tighter


def test_v1_docker_cfs_quota_limits_a_wide_affinity_mask(tmp_path):
    cpu = tmp_path / "sys fs" / "cpu,cpuacct"  # a space in the mount point is escaped as \040
    write(cpu, "cpu.cfs_quota_us", "300000")
    write(cpu, "cpu.cfs_period_us", "100000")
    memberships = ["12:memory:/docker/abc", "4:cpu,cpuacct:/docker/abc", "0::/"]
    mounts = [
        _mount_line("/docker/abc", cpu, "cgroup", "rw,cpu,cpuacct"),
        _mount_line("/docker/abc", tmp_path / "memory", "cgroup", "rw,memory"),
    ]
    limit = available_cores(fake_proc(tmp_path, memberships, mounts), affinity_cpus=64)
    assert (limit.cores, limit.affinity_cpus, limit.quota_cores) == (3, 64, 3.0)
    assert limit.quota_source == str(cpu / "cpu.cfs_quota_us")


def test_v1_without_quota_and_v2_without_cpu_controller_leave_the_affinity_mask(tmp_path):
    cpu, unified = tmp_path / "cpu", tmp_path / "unified"
    write(cpu, "cpu.cfs_quota_us", "-1")
    write(cpu, "cpu.cfs_period_us", "100000")
    unified.mkdir()  # the hybrid layout of this CI machine: no cpu.max in the v2 hierarchy
    proc = fake_proc(
        tmp_path,
        ["1:cpu:/", "2:cpuacct:/", "0::/"],
        [_mount_line("/", cpu, "cgroup", "rw,cpu"), _mount_line("/", unified, "cgroup2", "rw")],
    )
    limit = available_cores(proc, affinity_cpus=6)
    assert (limit.cores, limit.quota_cores, limit.quota_source) == (6, None, "")
    assert "no cgroup CPU quota" in limit.describe()


def test_a_cgroup_outside_the_mounted_subtree_is_not_read(tmp_path):
    """A mount of another container's subtree says nothing about this process's limit."""
    cgroup = tmp_path / "cgroup"
    write(cgroup, "cpu.max", "100000 100000")
    proc = fake_proc(tmp_path, ["0::/other/container"], [_mount_line("/mine", cgroup, "cgroup2", "rw")])
    assert cgroup_cpu_quota(proc) is None


def test_no_proc_means_no_quota(tmp_path):
    assert cgroup_cpu_quota(str(tmp_path / "missing")) is None
    assert available_cores(str(tmp_path / "missing"), affinity_cpus=3).cores == 3


@pytest.mark.parametrize("text", ["150000", "lots 100000", "150000 0"])
def test_an_unreadable_quota_file_is_an_error_naming_it(tmp_path, text):
    cgroup = tmp_path / "cgroup"
    write(cgroup, "cpu.max", text)
    proc = fake_proc(tmp_path, ["0::/"], [_mount_line("/", cgroup, "cgroup2", "rw")])
    with pytest.raises(ValueError, match=str(cgroup / "cpu.max")):
        cgroup_cpu_quota(proc)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_the_affinity_mask_of_this_process_is_counted_not_the_machine():
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mask)})
        limit = available_cores()
        assert (limit.affinity_cpus, limit.cores) == (1, 1)
    finally:
        os.sched_setaffinity(0, mask)
    assert available_cores().affinity_cpus == len(mask)
