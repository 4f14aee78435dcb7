"""Streaming threads that follow the load of the other programs on this process's CPUs.

No fixed thread count serves a live stream on a shared machine: on every core of its share the
phantom UltraDet streamed at 64.6 FPS on a quiet machine (one core fewer: 23 % less), but next to
one busy program its OpenMP threads waited for a descheduled sibling and it fell to 7.9 FPS,
while one core fewer kept its quiet rate (issue 16, 2 cores; benchmarks/RESULTS.md, "CPU threads
on a shared machine"). The governor therefore
streams on the full share while the other programs leave those cores idle and on the budget's
streaming count (one core fewer) while they take one: streaming_threads() builds it and
inference_on_video_dataset() steps it once a frame. It re-measures at most every SAMPLE_SECONDS,
so a step costs a clock reading, and it changes torch's thread count only when its choice
changes. A stream starts on the safe count, so on a quiet machine every frame before the first
measurement streams on one core fewer (half a second of them cost a 5-second stream 3-4 % of
its quiet FPS). The first measurement therefore comes sooner, FIRST_SAMPLE_SECONDS after the
first frame; and it starts at the first frame, not when the governor is made, because until then
the data loader's workers start up (fork, first batches), a burst that would read as another
program's load and keep the stream on the safe count for the next whole interval.
"""

import logging
import time
from typing import Callable, Optional

import torch

__all__ = [
    "StreamingThreadGovernor",
    "FixedStreamingThreads",
    "SAMPLE_SECONDS",
    "FIRST_SAMPLE_SECONDS",
    "DOWN_AT",
    "UP_AT",
]

logger = logging.getLogger(__name__)

# Long enough for the clock-tick counters (100 a second on each CPU) to tell the load to a few
# hundredths of a core, short enough to react within about 20 frames at 38 FPS.
SAMPLE_SECONDS = 0.5
# The first measurement: 20 clock ticks on 2 CPUs, enough to tell one busy core (about 10 ticks)
# from a quiet machine (0-1 tick), and 3 frames at 29 FPS on the safe count.
FIRST_SAMPLE_SECONDS = 0.1
# Cores of the full share that other programs took over the last interval: from DOWN_AT up the
# stream drops to the budget's streaming count (the scheduler should give a program that keeps one
# core busy about half a core or more even against a full share of spinning threads), up to UP_AT
# it takes the full share again (a quiet machine's background, and the phantom's loader workers at
# about 0.05 cores, stay below it). Loads in between keep the current count, so a load near one
# threshold does not flap the count.
DOWN_AT = 0.3
UP_AT = 0.15


class StreamingThreadGovernor:
    """Picks ``quiet_threads`` (the full share) or ``busy_threads`` (the budget's streaming count)
    from ``others_load()``: the cores other programs kept busy on the ``cpus`` CPUs since its
    previous call (None when unknown), every ``interval`` seconds (SAMPLE_SECONDS by default) of
    ``clock``, the first time ``first_interval`` (FIRST_SAMPLE_SECONDS) after the first step
    (the first frame). It starts at ``busy_threads``, the safe count."""

    def __init__(
        self,
        quiet_threads: int,
        busy_threads: int,
        cpus: int,
        others_load: Callable[[], Optional[float]],
        clock: Callable[[], float] = time.monotonic,
        interval: Optional[float] = None,
        first_interval: Optional[float] = None,
    ):
        self.quiet_threads, self.busy_threads = quiet_threads, busy_threads
        self.threads = busy_threads
        self._cpus = cpus
        self._others_load = others_load
        self._clock = clock
        self._interval = SAMPLE_SECONDS if interval is None else interval
        self._next_interval = FIRST_SAMPLE_SECONDS if first_interval is None else first_interval
        self._last_sample: Optional[float] = None  # the first step starts the clock

    def step(self) -> None:
        """Once a frame: every ``interval`` seconds, measure and switch the count if called for."""
        now = self._clock()
        if self._last_sample is None:
            self._others_load()  # the load since the governor was made (the loader starting): not counted
            self._last_sample = now
            return
        if now - self._last_sample < self._next_interval:
            return
        seconds, self._last_sample, self._next_interval = now - self._last_sample, now, self._interval
        others = self._others_load()
        if others is None:
            return
        # The full share leaves (cpus - quiet_threads) cores to other programs; what they use
        # beyond that is taken from the stream.
        taken = others - (self._cpus - self.quiet_threads)
        if taken >= DOWN_AT:
            wanted = self.busy_threads
        elif taken <= UP_AT:
            wanted = self.quiet_threads
        else:
            wanted = self.threads
        if wanted != self.threads:
            self.threads = wanted
            torch.set_num_threads(wanted)
            logger.info(
                f"Streaming inference now on {wanted} thread(s): other programs kept {others:.2f} of the "
                f"{self._cpus} CPU(s) busy over the last {seconds:.1f} s"
            )


class FixedStreamingThreads:
    """The static choice (a fixed CPU_THREADS or OMP_NUM_THREADS, a share of one core, a cgroup
    quota, no CPU counters to read): the count streaming_threads() set stays."""

    def step(self) -> None:
        """Nothing to adapt."""
