"""The other programs' load on this process's CPUs (usvid.utils.cpu_load), read from fake /proc
counters with known clock ticks: /proc/stat as Linux writes it and this process's
/proc/self/stat (its name with a space and a bracket, as a process may be named)."""

import pytest

from usvid.utils.cpu_load import OtherProgramsLoad, others_busy_cores, read_cpu_times


def proc_stat(per_cpu_ticks, interrupts):
    """/proc/stat as Linux writes it: the summary line, one line per CPU (user nice system idle
    iowait irq softirq steal guest guest_nice), then other counters (which must be skipped)."""
    total = [sum(column) for column in zip(*per_cpu_ticks)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{i} " + " ".join(map(str, ticks)) for i, ticks in enumerate(per_cpu_ticks)]
    return "\n".join(lines + [f"intr {interrupts} 0 0", "ctxt 456", ""])


TICKS_BEFORE = [
    [100, 10, 20, 1000, 30, 5, 5, 10, 40, 0],
    [200, 0, 0, 800, 0, 0, 0, 0, 0, 0],
    [600, 0, 70, 7200, 60, 0, 0, 0, 0, 0],
]
# 100 ticks later on every CPU: cpu0 60 busy (its guest counter moves too, inside user), cpu1
# 100 busy, cpu2 idle.
TICKS_ADDED = [[40, 0, 10, 30, 10, 0, 0, 10, 30, 0], [100] + [0] * 9, [0, 0, 0, 100] + [0] * 6]
STAT_BEFORE = proc_stat(TICKS_BEFORE, interrupts=123)
STAT_AFTER = proc_stat(
    [[a + b for a, b in zip(before, added)] for before, added in zip(TICKS_BEFORE, TICKS_ADDED)], interrupts=789
)


def fake_proc(tmp_path, stat=STAT_BEFORE, utime=0, stime=0):
    """A /proc with the CPU counters and this process's user and system ticks (its 14th and 15th
    fields; cutime and cstime, its reaped children's, follow); returns its path."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text(stat)
    (proc / "self" / "stat").write_text(
        f"4242 (python (x) y) R 1 4242 4242 0 -1 4194560 1000 0 0 0 {utime} {stime} 99 9 20 0 5 0\n"
    )
    return str(proc)


def test_the_counters_of_the_masks_cpus(tmp_path):
    times = read_cpu_times([0, 1], fake_proc(tmp_path))
    # cpu0: 1180 ticks in its first eight fields (guest is inside user), 1030 of them idle or
    # iowait; cpu1: 1000 ticks, 200 busy. The summary line and cpu2 are not counted.
    assert (times.total, times.busy, times.cpus) == (1180 + 1000, 150 + 200, 2)


def test_own_ticks_are_this_processs_user_and_system_time(tmp_path):
    # Not its children's: a data-loader worker competes for the cores like any other program.
    assert read_cpu_times([0], fake_proc(tmp_path, utime=30, stime=5)).own == 35


def test_other_programs_are_the_busy_ticks_less_our_own(tmp_path):
    before = read_cpu_times([0, 1, 2], fake_proc(tmp_path, utime=100))
    after = read_cpu_times([0, 1, 2], fake_proc(tmp_path, STAT_AFTER, utime=140, stime=10))
    # 100 ticks elapsed on each CPU; 160 busy ticks, 50 of them ours: 110 ticks = 1.1 cores.
    assert others_busy_cores(before, after) == pytest.approx(1.1)


def test_our_own_busy_time_is_never_the_others_load(tmp_path):
    before = read_cpu_times([0, 1, 2], fake_proc(tmp_path))
    after = read_cpu_times([0, 1, 2], fake_proc(tmp_path, STAT_AFTER, utime=170))
    # Tick rounding may give us more than the CPUs counted busy: no load, not a negative one.
    assert others_busy_cores(before, after) == 0.0


def test_no_elapsed_ticks_is_no_measurement(tmp_path):
    times = read_cpu_times([0], fake_proc(tmp_path))
    assert others_busy_cores(times, times) is None


def test_the_load_follows_the_counters_call_after_call(tmp_path):
    proc = fake_proc(tmp_path)
    load = OtherProgramsLoad(proc, cpus=[1, 2])
    assert load.cpus == 2
    fake_proc(tmp_path, STAT_AFTER)
    assert load() == pytest.approx(1.0)  # cpu1 busy all along, cpu2 idle
    assert load() is None  # the counters did not move since


@pytest.mark.parametrize("stat", [None, "cpu  1 2 3 4 5 6 7 8 0 0\ncpu7 1 2 3 4 5 6 7 8 0 0\n"])
def test_without_counters_for_our_cpus_nothing_is_measured(tmp_path, stat):
    proc = tmp_path / "proc"
    proc.mkdir()
    if stat is not None:  # else no /proc/stat at all (not Linux)
        (proc / "stat").write_text(stat)
    load = OtherProgramsLoad(str(proc), cpus=[0, 1])
    assert load.cpus is None and load() is None
