import itertools

import pytest
import torch

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import (
    DatasetCatalog,
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    register_coco_video,
    split_videos_by_frames,
)
from usvid.data import build as data_build
from usvid.data.build import ClipStream

BOX = [[4, 4, 10, 8]]


@pytest.fixture
def toy_cfg(tmp_path, coco_writer, clean_catalog):
    """Two tiny registered datasets: toy_a (3 videos of 5-9 frames), toy_b (1 video)."""
    a = coco_writer(tmp_path / "a", [[BOX] * 9, [[]] * 5, [BOX, [], BOX, [], BOX, []]])
    b = coco_writer(tmp_path / "b", [[BOX] * 6])
    register_coco_video("toy_a", a, str(tmp_path / "a"))
    register_coco_video("toy_b", b, str(tmp_path / "b"))
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.TRAIN = ("toy_a",)
    cfg.SEED = 3
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.SEGS_PER_BATCH = 2
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = 3
    cfg.INPUT.TRAIN_FRAME_SAMPLER.INTERVAL = 4
    cfg.INPUT.FIXED_AREA_TRAIN = cfg.INPUT.FIXED_AREA_TEST = 32 * 48
    cfg.INPUT.SIZE_DIVISIBILITY = 16
    return cfg


def summary(batches):
    """What identifies a stream of batches: per clip, its frames and pixel sums."""
    return [
        [(f["dataset"], f["video_id"], f["frame_idx"], int(f["image"].sum()), f["image"].shape[1:]) for f in clip]
        for batch in batches
        for clip in batch
    ]


def test_train_batches_are_lists_of_clips(toy_cfg):
    loader = build_video_detection_train_loader(toy_cfg)
    batch = next(iter(loader))
    assert len(batch) == 2 and all(len(clip) == 3 for clip in batch)
    for clip in batch:
        assert len({f["video_id"] for f in clip}) == 1
        idx = [f["frame_idx"] for f in clip]
        assert idx == sorted(idx) and idx[-1] - idx[0] < 4
        assert {f["image"].shape for f in clip} == {clip[0]["image"].shape}  # one size per clip
        assert all(f["image"].dtype == torch.uint8 and f["image"].shape[0] == 1 for f in clip)
        assert all(f["instances"].gt_boxes.tensor.shape[1] == 4 for f in clip)


def test_stream_is_the_same_with_workers(toy_cfg):
    plain = summary(itertools.islice(build_video_detection_train_loader(toy_cfg), 3))
    toy_cfg.DATALOADER.NUM_WORKERS = 2
    assert summary(itertools.islice(build_video_detection_train_loader(toy_cfg), 3)) == plain


def test_resume_continues_the_same_clip_stream(toy_cfg):
    reference = build_video_detection_train_loader(toy_cfg)
    expected = summary(itertools.islice(reference, 5))
    stopped = build_video_detection_train_loader(toy_cfg)
    it = iter(stopped)
    first = summary([next(it) for _ in range(2)])
    state = stopped.sampler.state_dict()
    assert first == expected[:4] and state["position"] == 4
    toy_cfg.SEED = -1  # a resumed run takes the seed from the checkpoint
    resumed = build_video_detection_train_loader(toy_cfg)
    resumed.sampler.load_state_dict(state)
    assert summary(itertools.islice(resumed, 3)) == expected[4:]
    # restoring while iterating rewinds the running iterator too
    next(it)
    stopped.sampler.load_state_dict(state)
    assert summary([next(it)]) == expected[4:6]


def test_several_datasets_are_drawn_equally_often(toy_cfg):
    stream = ClipStream([3, 1], seed=0)
    datasets = [d for _, _, d, _ in itertools.islice(stream.iter_from(0), 2000)]
    assert abs(sum(d == 1 for d in datasets) / 2000 - 0.5) < 0.05
    toy_cfg.DATASETS.TRAIN = ("toy_a", "toy_b")
    batches = list(itertools.islice(build_video_detection_train_loader(toy_cfg), 6))
    assert {clip[0]["dataset"] for batch in batches for clip in batch} == {"toy_a", "toy_b"}


def test_segs_per_batch_must_divide_by_world_size(toy_cfg, monkeypatch):
    monkeypatch.setattr(data_build.comm, "get_world_size", lambda: 4)
    toy_cfg.SOLVER.SEGS_PER_BATCH = 6
    with pytest.raises(ValueError, match=r"SEGS_PER_BATCH \(6\) must be divisible by the number of processes \(4\)"):
        build_video_detection_train_loader(toy_cfg)
    toy_cfg.SOLVER.SEGS_PER_BATCH = 0
    with pytest.raises(ValueError, match=r"SOLVER.SEGS_PER_BATCH must be >= 1 clip per iteration, got 0"):
        build_video_detection_train_loader(toy_cfg)


def test_a_training_set_without_any_lesion_is_an_error(toy_cfg, clean_catalog):
    videos = DatasetCatalog.get(toy_cfg.DATASETS.TRAIN[0])
    for video in videos:
        for frame in video["frames"]:
            frame["annotations"] = []
    DatasetCatalog.register("toy_empty", lambda: videos)
    toy_cfg.DATASETS.TRAIN = ("toy_empty",)
    with pytest.raises(ValueError, match=r"DATASETS.TRAIN \('toy_empty',\) holds no lesion box"):
        build_video_detection_train_loader(toy_cfg)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_test_loader_yields_frames_in_video_order(toy_cfg, num_workers):
    toy_cfg.DATALOADER.NUM_WORKERS = num_workers
    loader = build_video_detection_test_loader(toy_cfg, "toy_a")
    assert len(loader) == 9 + 5 + 6
    order = []
    for batch in loader:
        assert isinstance(batch, list) and len(batch) == 1
        frame = batch[0]
        order.append((frame["video_id"], frame["frame_idx"]))
        assert (frame["height"], frame["width"]) == (32, 48)
    assert order == [(v, i) for v, n in ((1, 9), (2, 5), (3, 6)) for i in range(n)]


def test_videos_are_split_across_ranks_by_frame_count(toy_cfg, monkeypatch):
    lengths = [90, 10, 40, 40, 30, 5]
    videos = [{"frames": [None] * n} for n in lengths]
    shares = split_videos_by_frames(videos, 2)
    assert sorted(shares[0] + shares[1]) == list(range(6))
    assert [sum(lengths[i] for i in share) for share in shares] == [105, 110]
    assert all(share == sorted(share) for share in shares)
    monkeypatch.setattr(data_build.comm, "get_world_size", lambda: 2)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(data_build.comm, "get_rank", lambda rank=rank: rank)
        loader = build_video_detection_test_loader(toy_cfg, "toy_a")
        frames = [batch[0]["video_id"] for batch in loader]
        assert len(loader) == len(frames)
        seen.append(sorted(set(frames)))
    assert seen == [[1], [2, 3]]  # 9 frames vs 5 + 6


GROUP_SIGNAL_SCRIPT = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from conftest import write_coco_video_dataset
from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import build_video_detection_train_loader, register_coco_video

json_file = write_coco_video_dataset("data", [[[[4, 4, 10, 8]]] * 6] * 2)
register_coco_video("toy", json_file, "data")
cfg = add_ultrasound_config(get_cfg())
cfg.DATASETS.TRAIN = ("toy",)
cfg.DATALOADER.NUM_WORKERS = 2
cfg.SOLVER.SEGS_PER_BATCH = 1
cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = 2
cfg.INPUT.FIXED_AREA_TRAIN = 32 * 48
batches = iter(build_video_detection_train_loader(cfg))
for _ in range(4):  # both workers have started and served clips (default SIGINT behaviour)
    next(batches)
received = []
signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))  # like the trainer
print("ready", flush=True)
while not received:  # not signal.pause(): a signal between the check and the pause would be lost
    time.sleep(0.01)
for _ in range(12):  # more than the prefetched clips: the workers must still be serving
    next(batches)
print("finished after the signal", flush=True)
"""


def test_loader_workers_survive_a_signal_to_the_whole_process_group(tmp_path):
    """Ctrl-C signals the terminal's whole process group; the trainer finishes its step and
    saves, which needs the loader's workers to still be alive."""
    import os
    import pathlib
    import signal
    import subprocess
    import sys

    script = tmp_path / "group_signal.py"
    script.write_text(GROUP_SIGNAL_SCRIPT)
    tests_data = str(pathlib.Path(__file__).parent)
    process = subprocess.Popen(
        [sys.executable, str(script), tests_data],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "finished after the signal" in out
