import numpy as np
import pytest

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data.frame_sampler import WindowFrameSampler, build_frame_sampler


def toy_video(num_frames, video_id=7, dataset="toy", first_idx=100):
    return {
        "video_id": video_id,
        "dataset": dataset,
        "frames": [{"frame_idx": first_idx + i, "annotations": []} for i in range(num_frames)],
    }


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


def test_build_from_config(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    assert type(build_frame_sampler(cfg)) is WindowFrameSampler
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = str(tmp_path / "fp.json")
    with pytest.raises(ValueError, match="set NAME to HardNegativeFrameSampler"):
        build_frame_sampler(cfg)
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "Nope"
    with pytest.raises(KeyError, match="Nope.*WindowFrameSampler"):
        build_frame_sampler(cfg)
