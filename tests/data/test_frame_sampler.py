import json

import numpy as np
import pytest

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data.frame_sampler import (
    HardNegativeFrameSampler,
    WindowFrameSampler,
    build_frame_sampler,
    load_hard_negative_frames,
)


def toy_video(num_frames, video_id=7, dataset="toy", first_idx=100):
    return {"video_id": video_id, "dataset": dataset,
            "frames": [{"frame_idx": first_idx + i, "annotations": []} for i in range(num_frames)]}


@pytest.mark.parametrize("num_frames", [1, 3, 12, 50])
def test_clip_bounds(num_frames):
    sampler = WindowFrameSampler(num_out_frames=4, interval=8)
    rng = np.random.default_rng(0)
    for _ in range(300):
        positions = sampler(toy_video(num_frames), rng)
        assert len(positions) == 4 and positions == sorted(positions)
        assert 0 <= positions[0] and positions[-1] < num_frames
        assert positions[-1] - positions[0] < 8  # inside one window of INTERVAL frames
        if num_frames >= 4:
            assert len(set(positions)) == 4  # distinct whenever the video allows it


def test_every_frame_can_start_and_end_a_clip():
    sampler = WindowFrameSampler(num_out_frames=3, interval=5)
    rng = np.random.default_rng(1)
    clips = [sampler(toy_video(20), rng) for _ in range(2000)]
    assert {c[0] for c in clips} >= {0} and {c[-1] for c in clips} >= {19}
    assert set(np.concatenate(clips)) == set(range(20))


def test_hard_negative_frequency():
    # 2 mined frames of 40 at rate 5: each is the window centre with probability 5 / (38 + 10).
    mined = {("toy", 7): {110, 130}}
    sampler = HardNegativeFrameSampler(num_out_frames=1, interval=1, hard_negatives=mined, fp_sample_rate=5.0)
    rng = np.random.default_rng(2)
    draws = np.array([sampler(toy_video(40), rng)[0] for _ in range(6000)])
    expected = 5.0 / 48
    for position in (10, 30):
        assert abs(np.mean(draws == position) - expected) < 0.015
    assert abs(np.mean(draws == 0) - 1.0 / 48) < 0.01
    # another video of the same dataset has no mined frames: uniform
    other = np.array([sampler(toy_video(40, video_id=8), rng)[0] for _ in range(4000)])
    assert abs(np.mean(other == 10) - 1.0 / 40) < 0.01


def test_hard_negative_window_contains_the_mined_frame():
    mined = {("toy", 7): {125}}
    sampler = HardNegativeFrameSampler(4, 8, mined, fp_sample_rate=1e6)
    rng = np.random.default_rng(3)
    for _ in range(50):
        assert 25 in sampler(toy_video(60), rng)


def test_load_hard_negative_file_folder_and_list(tmp_path):
    single = {"dataset": "toy", "frames": [{"video_id": 7, "frame_idx": 3}, {"video_id": "v2", "frame_idx": 4}]}
    (tmp_path / "fp_0000099.json").write_text(json.dumps({"dataset": "old", "frames": []}))
    (tmp_path / "fp_0000199.json").write_text(json.dumps(single))
    assert load_hard_negative_frames(str(tmp_path)) == {("toy", 7): {3}, ("toy", "v2"): {4}}
    (tmp_path / "both.json").write_text(json.dumps([single, {"dataset": "b", "frames": [{"video_id": 1, "frame_idx": 0}]}]))
    assert load_hard_negative_frames(str(tmp_path / "both.json"))[("b", 1)] == {0}
    (tmp_path / "bad.json").write_text(json.dumps({"dataset": "toy", "frames": [{"video_id": 1}]}))
    with pytest.raises(ValueError, match=r"bad.json: entry 0 frames\[0\]: missing required key\(s\) \['frame_idx'\]"):
        load_hard_negative_frames(str(tmp_path / "bad.json"))


def test_build_from_config(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    assert type(build_frame_sampler(cfg)) is WindowFrameSampler
    fp_file = tmp_path / "fp.json"
    fp_file.write_text(json.dumps({"dataset": "toy", "frames": [{"video_id": 7, "frame_idx": 101}]}))
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = str(fp_file)
    with pytest.raises(ValueError, match="set NAME to HardNegativeFrameSampler"):
        build_frame_sampler(cfg)
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "HardNegativeFrameSampler"
    sampler = build_frame_sampler(cfg)
    assert sampler.hard_negatives == {("toy", 7): {101}} and sampler.fp_sample_rate == 5.0
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "Nope"
    with pytest.raises(KeyError, match="Nope.*HardNegativeFrameSampler"):
        build_frame_sampler(cfg)
