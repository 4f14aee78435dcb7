"""Streaming inference runs at the thread budget's streaming count (usvid.utils.cpu_budget),
moves to the full share and back as the other programs' load on the CPUs changes
(usvid.utils.thread_governor) and hands the training count back afterwards, also when evaluation
runs inside training."""

import os

import pytest
import torch

from usvid.evaluation import inference_on_video_dataset
from usvid.utils import cpu_load, thread_governor
from usvid.utils.cpu_budget import apply_thread_budget
from usvid.utils.cpu_limits import CpuLimit

pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")


class ThreadRecorder(torch.nn.Module):
    """A streaming model that records torch's thread count at every frame."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.threads = []

    def reset(self):
        pass

    def forward(self, inputs):
        self.threads.append(torch.get_num_threads())
        return [{"instances": None} for _ in inputs]


def frames_of_two_videos():
    return [[{"video_id": video, "frame_idx": i}] for video in (1, 2) for i in range(4)]


def test_streaming_runs_at_the_streaming_count_then_training_resumes(frame_counter):
    budget = apply_thread_budget(loader_workers=0, limit=CpuLimit(3, 3, None, ""))
    assert (budget.training, budget.streaming) == (3, 2)
    model = ThreadRecorder()
    assert inference_on_video_dataset(model, frames_of_two_videos(), frame_counter())["frame_count"]["frames"] == 8
    assert model.threads == [2] * 8
    assert torch.get_num_threads() == 3


class SharedMachine:
    """/proc/stat of this process's CPUs, advanced by 100 clock ticks per CPU at every frame:
    all idle, or all kept busy by another program."""

    def __init__(self, proc_root):
        self.path = os.path.join(proc_root, "stat")
        self.cpus = sorted(os.sched_getaffinity(0))
        self.busy = self.idle = 0
        os.makedirs(proc_root, exist_ok=True)
        self.write()

    def advance(self, other_program_busy):
        if other_program_busy:
            self.busy += 100
        else:
            self.idle += 100
        self.write()

    def write(self):
        with open(self.path, "w") as f:
            f.write("".join(f"cpu{cpu} {self.busy} 0 0 {self.idle} 0 0 0 0 0 0\n" for cpu in self.cpus))


class ThreadRecorderOnASharedMachine(ThreadRecorder):
    """While frames 0-3 run the CPUs are idle, from frame 4 on another program keeps them busy."""

    def __init__(self, machine):
        super().__init__()
        self.machine = machine

    def forward(self, inputs):
        outputs = super().forward(inputs)
        self.machine.advance(other_program_busy=len(self.threads) > 4)
        return outputs


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the counters' room for other programs needs 2 CPUs")
def test_streaming_follows_the_other_programs_load(monkeypatch, frame_counter):
    machine = SharedMachine(cpu_load.PROC_ROOT)  # the sandbox's /proc
    for interval in ("SAMPLE_SECONDS", "FIRST_SAMPLE_SECONDS"):  # measure before every frame
        monkeypatch.setattr(thread_governor, interval, 0.0)
    budget = apply_thread_budget(loader_workers=0, limit=CpuLimit(2, 2, None, ""))
    assert (budget.training, budget.streaming, budget.streaming_quiet) == (2, 1, 2)
    model = ThreadRecorderOnASharedMachine(machine)
    assert inference_on_video_dataset(model, frames_of_two_videos(), frame_counter())["frame_count"]["frames"] == 8
    # Frame 0 starts on the safe count; the idle CPUs under it and frames 1-3 give the stream
    # both cores, the busy ones under frame 4 take one back.
    assert model.threads == [1, 2, 2, 2, 2, 1, 1, 1]
    assert torch.get_num_threads() == 2


def test_without_a_budget_the_callers_thread_count_is_kept(frame_counter):
    torch.set_num_threads(2)
    model = ThreadRecorder()
    inference_on_video_dataset(model, frames_of_two_videos(), frame_counter())
    assert model.threads == [2] * 8
