"""Data-loader workers compute with one thread each, whatever the training process uses (the
thread budget of usvid.utils.cpu_budget counts them as one core at most): the frames a real test
loader hands over report the torch and OpenCV thread counts of the worker that mapped them."""

import cv2
import pytest
import torch

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import build_video_detection_test_loader, build_video_detection_train_loader, register_coco_video
from usvid.data.mapper import ClipMapper

pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")


class ThreadReportingMapper(ClipMapper):
    """The test mapper, plus the worker's thread counts in every frame dict."""

    def map_packed(self, video, frames, rng=None):
        packed = super().map_packed(video, frames, rng)
        for fields in packed.frame_fields:
            fields["worker_threads"] = (torch.get_num_threads(), cv2.getNumThreads())
        return packed


@pytest.fixture
def cfg(tmp_path, coco_writer, clean_catalog):
    box = [[4, 4, 10, 8]]
    register_coco_video("toy_threads", coco_writer(tmp_path / "v", [[box] * 4, [box] * 3]), str(tmp_path / "v"))
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.TRAIN = ("toy_threads",)
    cfg.DATALOADER.NUM_WORKERS = 2
    cfg.SOLVER.SEGS_PER_BATCH = 1
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = 2
    return cfg


def test_test_and_train_loader_workers_use_one_thread(cfg):
    torch.set_num_threads(2)
    cv2_threads = cv2.getNumThreads()
    mapper = ThreadReportingMapper(is_train=False)
    frames = [frame for [frame] in build_video_detection_test_loader(cfg, "toy_threads", mapper)]
    assert len(frames) == 7 and {frame["worker_threads"] for frame in frames} == {(1, 1)}
    train_loader = build_video_detection_train_loader(cfg, ThreadReportingMapper(is_train=True))
    [clip] = next(iter(train_loader))
    assert {frame["worker_threads"] for frame in clip} == {(1, 1)}
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, cv2_threads)  # the trainer keeps its own
