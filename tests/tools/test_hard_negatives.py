"""The hard-negative miner finds exactly the frames the FP metric blames, and writes them in the
format the frame sampler reads."""

import logging

import numpy as np

from usvid.data import load_hard_negative_frames
from usvid.evaluation.hard_negatives import mine_false_positive_frames, write_hard_negative_json

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
    assert mine_false_positive_frames(predictions, ground_truths, recall=0.7, by_video=True) == {
        "b": [0, 1, 2, 3, 4]
    }


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
