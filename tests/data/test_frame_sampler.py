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


@pytest.mark.parametrize("num_frames", [2, 9, 17, 40])
def test_clips_with_a_frame_step_keep_its_spacing(num_frames):
    """A temporal head with context frames 3 apart trains on clips spaced alike: every clip holds
    frames 3 apart (repeats only where the video is too short), inside one window of 5 steps."""
    sampler = WindowFrameSampler(num_out_frames=5, interval=5, frame_step=3)
    rng = np.random.default_rng(2)
    clips = [sampler(toy_video(num_frames), rng) for _ in range(500)]
    for positions in clips:
        assert len(positions) == 5 and positions == sorted(positions)
        assert 0 <= positions[0] and positions[-1] < num_frames
        assert all(b - a in (0, 3) for a, b in zip(positions, positions[1:]))
        if num_frames >= 13:  # five frames 3 apart fit: distinct, consecutive steps
            assert np.diff(positions).tolist() == [3, 3, 3, 3]
    if num_frames == 40:
        assert set(np.concatenate(clips)) == set(range(40))  # every frame and phase is drawn


def test_the_window_is_centred_where_the_video_allows_and_shifted_at_its_ends():
    consecutive, stepped = WindowFrameSampler(4, 8), WindowFrameSampler(5, 5, frame_step=3)
    assert list(consecutive._window(15, 30)) == list(range(11, 19))
    assert list(consecutive._window(0, 30)) == list(range(0, 8))
    assert list(consecutive._window(29, 30)) == list(range(22, 30))
    assert list(stepped._window(20, 40)) == [14, 17, 20, 23, 26]
    assert list(stepped._window(1, 40)) == [1, 4, 7, 10, 13]  # the centre's phase is kept
    assert list(stepped._window(39, 40)) == [27, 30, 33, 36, 39]
    assert list(stepped._window(4, 9)) == [1, 4, 7]  # all the video has at that phase
    with pytest.raises(ValueError, match=r"FRAME_STEP \(0\) must be >= 1"):
        WindowFrameSampler(4, 8, frame_step=0)


def test_build_from_config(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    assert type(build_frame_sampler(cfg)) is WindowFrameSampler
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP = 2
    assert build_frame_sampler(cfg).frame_step == 2
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = str(tmp_path / "fp.json")
    with pytest.raises(ValueError, match="set NAME to HardNegativeFrameSampler"):
        build_frame_sampler(cfg)
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "Nope"
    with pytest.raises(KeyError, match="Nope.*WindowFrameSampler"):
        build_frame_sampler(cfg)
