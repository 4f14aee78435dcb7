"""The streaming thread governor's choices (usvid.utils.thread_governor) with a hand-driven clock
and the other programs' load given interval by interval: quiet -> the full share, busy -> one
core fewer, the hysteresis band in between, room for the other processes of a multi-process run,
and one measurement per interval. Where it is switched on is tested with the budget
(tests/utils/test_cpu_budget.py) and with streaming inference (tests/evaluation/test_streaming_threads.py)."""

import logging

import pytest
import torch

from usvid.utils.thread_governor import (
    DOWN_AT,
    FIRST_SAMPLE_SECONDS,
    SAMPLE_SECONDS,
    UP_AT,
    StreamingThreadGovernor,
)

pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Loads:
    """The others' load of each measurement, in order, after the reading of the first frame
    (``start``, which the governor discards); counts the measurements, that reading included."""

    def __init__(self, *loads, start=5.0):
        self.loads = [start, *loads]
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.loads.pop(0)


def first_frame(governor, clock, seconds=0.25):
    """The first step, ``seconds`` after the governor was made (the loader's start-up)."""
    clock.now += seconds
    governor.step()


def run(loads, cpus=2, quiet=2, busy=1, interval=0.5):
    """The thread count after each measured interval."""
    clock, source = Clock(), Loads(*loads)
    torch.set_num_threads(busy)  # as streaming_threads() starts
    governor = StreamingThreadGovernor(
        quiet, busy, cpus, source, clock=clock, interval=interval, first_interval=interval
    )
    first_frame(governor, clock)
    counts = []
    for _ in loads:
        clock.now += interval
        governor.step()
        assert torch.get_num_threads() == governor.threads
        counts.append(governor.threads)
    return counts


def test_quiet_takes_the_full_share_and_busy_one_core_fewer():
    assert run([0.02, 0.0, 1.0, 0.98, 0.05]) == [2, 2, 1, 1, 2]


def test_a_load_between_the_thresholds_keeps_the_count_either_way():
    middle = (UP_AT + DOWN_AT) / 2
    assert run([middle, 0.0, middle, 1.0, middle]) == [1, 2, 2, 1, 1]
    assert run([UP_AT, DOWN_AT]) == [2, 1]  # the thresholds themselves switch


def test_other_processes_of_the_run_may_use_the_cores_outside_the_share():
    # 4 CPUs, a share of 2: a sibling process streaming on its 2 leaves ours whole, a third
    # program on top of it takes a core from us.
    assert run([2.0, 3.0, 2.1], cpus=4) == [2, 1, 2]


def test_an_unknown_load_changes_nothing():
    assert run([None, 0.0, None], quiet=3, busy=2, cpus=3) == [2, 3, 3]


def test_it_measures_once_an_interval_however_often_it_is_stepped():
    clock, source = Clock(), Loads(0.0, 1.0)
    governor = StreamingThreadGovernor(2, 1, 2, source, clock=clock, interval=1.0, first_interval=1.0)
    first_frame(governor, clock)
    for _ in range(7):  # frames of the first 0.875 s
        clock.now += 0.125
        governor.step()
    assert (source.calls, governor.threads) == (1, 1)
    clock.now += 0.125
    governor.step()
    governor.step()
    assert (source.calls, governor.threads) == (2, 2)


def test_the_first_measurement_starts_at_the_first_frame_and_comes_sooner():
    # A quiet machine, but a busy start (the loader's workers starting before the first frame:
    # Loads' start value): that reading is discarded, the stream leaves the safe count after the
    # short first interval from the first frame, and later measurements keep the regular pace.
    # (Binary fractions keep the clock arithmetic exact.)
    clock, source = Clock(), Loads(0.0, 1.0, start=1.5)
    governor = StreamingThreadGovernor(2, 1, 2, source, clock=clock, interval=0.5, first_interval=0.125)
    first_frame(governor, clock)
    assert (source.calls, governor.threads) == (1, 1)
    clock.now += 0.0625
    governor.step()
    assert (source.calls, governor.threads) == (1, 1)
    clock.now += 0.0625
    governor.step()
    assert (source.calls, governor.threads) == (2, 2)
    clock.now += 0.375
    governor.step()
    assert source.calls == 2
    clock.now += 0.125
    governor.step()
    assert (source.calls, governor.threads) == (3, 1)
    assert FIRST_SAMPLE_SECONDS < SAMPLE_SECONDS


class Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_each_change_is_logged_with_its_reason():
    logger, handler = logging.getLogger("usvid.utils.thread_governor"), Messages()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run([0.0, 0.01, 1.0])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert handler.messages == [
        "Streaming inference now on 2 thread(s): other programs kept 0.00 of the 2 CPU(s) busy over the last 0.5 s",
        "Streaming inference now on 1 thread(s): other programs kept 1.00 of the 2 CPU(s) busy over the last 0.5 s",
    ]
