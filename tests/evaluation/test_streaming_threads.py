"""Streaming inference runs at the thread budget's streaming count (usvid.utils.cpu_budget) and
hands the training count back afterwards, also when evaluation runs inside training."""

import pytest
import torch

from usvid.evaluation import inference_on_video_dataset
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


def test_without_a_budget_the_callers_thread_count_is_kept(frame_counter):
    torch.set_num_threads(2)
    model = ThreadRecorder()
    inference_on_video_dataset(model, frames_of_two_videos(), frame_counter())
    assert model.threads == [2] * 8
