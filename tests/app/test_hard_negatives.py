"""usvid.app.hard_negatives: the miner finds exactly the frames the FP metric blames and writes
them in the format the frame sampler reads; the sampler centres windows on them more often."""

import json
import logging

import numpy as np
import pytest

from usvid.app.hard_negatives import (
    HardNegativeFrameSampler,
    load_hard_negative_frames,
    mine_false_positive_frames,
    write_hard_negative_json,
)
from usvid.config import add_ultrasound_config, get_cfg
from usvid.data.frame_sampler import build_frame_sampler

LESION = [10.0, 10.0, 40.0, 40.0]
DECOY = [100.0, 100.0, 120.0, 120.0]


def _video(num_frames, lesion_score, decoy_score=None, decoy_frames=()):
    """A lesion in every frame detected with ``lesion_score``, plus a far-away decoy box."""
    ground_truth = [np.array([LESION])] * num_frames
    predictions = []
    for i in range(num_frames):
        rows = [LESION + [lesion_score(i) if callable(lesion_score) else lesion_score]]
        if i in decoy_frames:
            rows.append(DECOY + [decoy_score])
        predictions.append(np.array(rows))
    return predictions, ground_truth


def test_mines_the_frames_of_isolated_false_alarms():
    # docs/en/metrics.md worked example: a perfect detector (0.5) plus a 0.99 decoy every 6th frame; the
    # decoys rank first, recall 0.8 is reached among the lesion boxes, every decoy is kept.
    predictions, ground_truth = _video(30, 0.5, 0.99, decoy_frames=range(0, 30, 6))
    mined = mine_false_positive_frames({"v": predictions}, {"v": ground_truth}, recall=0.8)
    assert mined == {"v": [0, 6, 12, 18, 24]}


def test_decoys_below_the_operating_threshold_are_not_mined():
    predictions, ground_truth = _video(30, 0.5, 0.01, decoy_frames=range(0, 30, 6))
    assert mine_false_positive_frames({"v": predictions}, {"v": ground_truth}, recall=0.8) == {}


def test_a_long_false_sequence_mines_every_frame_it_covers():
    # One sequence for the metric (it adds 1 to the count), but every one of its frames is a
    # moment the model should learn from.
    predictions, ground_truth = _video(50, 0.5, 0.9, decoy_frames=range(5, 45))
    mined = mine_false_positive_frames({"v": predictions}, {"v": ground_truth}, recall=0.8)
    assert mined == {"v": list(range(5, 45))}


def test_per_video_thresholds_find_hard_negatives_of_an_unsure_video():
    # Video "a" is confident (lesion 0.99 .. 0.951), video "b" unsure (lesion 0.3) with a decoy at
    # 0.35 in frames 0-4. The pooled threshold at recall 0.7 (~0.956) keeps none of b's boxes;
    # b's own threshold (0.3) keeps its decoys, which form a false-positive sequence.
    a_pred, a_gt = _video(40, lambda i: 0.99 - 0.001 * i)
    b_pred, b_gt = _video(10, 0.3, 0.35, decoy_frames=range(5))
    predictions, ground_truths = {"a": a_pred, "b": b_pred}, {"a": a_gt, "b": b_gt}
    assert mine_false_positive_frames(predictions, ground_truths, recall=0.7, by_video=False) == {}
    assert mine_false_positive_frames(predictions, ground_truths, recall=0.7, by_video=True) == {"b": [0, 1, 2, 3, 4]}


def test_no_operating_point_mines_nothing_and_says_why(caplog):
    frames = [np.array([DECOY + [0.9]])] * 10
    with caplog.at_level(logging.WARNING):
        mined = mine_false_positive_frames({"v": frames}, {"v": [np.zeros((0, 4))] * 10})
    assert mined == {}
    assert "no operating point" in caplog.text


def test_json_round_trip_through_the_frame_sampler_reader(tmp_path):
    # frame_idx values differ from list positions (e.g. static frames were dropped).
    videos = [
        {"video_id": 7, "frames": [{"frame_idx": 100 + 2 * i, "annotations": []} for i in range(6)]},
        {"video_id": 9, "frames": [{"frame_idx": i, "annotations": [{"bbox": LESION}]} for i in range(3)]},
    ]
    path = write_hard_negative_json(
        str(tmp_path / "fp_0000009.json"), {"train_set": {7: [1, 4], 9: [2]}}, {"train_set": videos}
    )
    assert load_hard_negative_frames(str(tmp_path)) == {("train_set", 7): {102, 108}, ("train_set", 9): {2}}
    assert path.endswith("fp_0000009.json")


def toy_video(num_frames, video_id=7, dataset="toy", first_idx=100):
    return {
        "video_id": video_id,
        "dataset": dataset,
        "frames": [{"frame_idx": first_idx + i, "annotations": []} for i in range(num_frames)],
    }


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
    (tmp_path / "both.json").write_text(
        json.dumps([single, {"dataset": "b", "frames": [{"video_id": 1, "frame_idx": 0}]}])
    )
    assert load_hard_negative_frames(str(tmp_path / "both.json"))[("b", 1)] == {0}
    (tmp_path / "bad.json").write_text(json.dumps({"dataset": "toy", "frames": [{"video_id": 1}]}))
    with pytest.raises(ValueError, match=r"bad.json: entry 0 frames\[0\]: missing required key\(s\) \['frame_idx'\]"):
        load_hard_negative_frames(str(tmp_path / "bad.json"))


def test_sampler_built_by_name_from_the_config(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    fp_file = tmp_path / "fp.json"
    fp_file.write_text(json.dumps({"dataset": "toy", "frames": [{"video_id": 7, "frame_idx": 101}]}))
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = str(fp_file)
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "HardNegativeFrameSampler"
    sampler = build_frame_sampler(cfg)
    assert type(sampler) is HardNegativeFrameSampler
    assert sampler.hard_negatives == {("toy", 7): {101}} and sampler.fp_sample_rate == 5.0
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "Nope"
    with pytest.raises(KeyError, match="Nope.*HardNegativeFrameSampler"):
        build_frame_sampler(cfg)
