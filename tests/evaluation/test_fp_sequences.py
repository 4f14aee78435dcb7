"""Predecessor links of the false-positive sequences (docs/en/metrics.md, FP step 4), tested
directly on usvid.evaluation.fp_sequences.TemporalLinks."""

import numpy as np
import pytest

from usvid.evaluation.fp_sequences import TemporalLinks


def links_for(frames, videos=None):
    """``frames``: one list of boxes per frame (all frames of one video unless ``videos`` gives
    each frame's video index). Every box is a candidate. Returns (links, box count)."""
    boxes = np.array([b for frame in frames for b in frame], dtype=float).reshape(-1, 4)
    box_frame = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    frame_video = np.zeros(len(frames), dtype=np.int64) if videos is None else np.asarray(videos)
    video_first_frame = np.array([np.flatnonzero(frame_video == v)[0] for v in np.unique(frame_video)])
    links = TemporalLinks(boxes, box_frame, frame_video, video_first_frame, np.ones(len(boxes), dtype=bool))
    return links, len(boxes)


A = [0, 0, 10, 10]
B = [4, 0, 14, 10]  # IoU(A, B) = 60 / 140 < .5
C = [2, 0, 12, 10]  # IoU(C, A) = IoU(C, B) = 80 / 120


def test_equal_iou_links_to_the_oldest_frame_first():
    links, n = links_for([[A], [B], [C]])
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, -1, 0]


def test_equal_iou_within_a_frame_links_to_the_first_listed_box():
    links, n = links_for([[B, A], [C]])
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, -1, 0]


def test_largest_iou_wins_over_older_boxes():
    links, n = links_for([[C], [[1, 0, 11, 10]], [A]])  # IoU(A, box 1) = 90/110 > IoU(A, C)
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, 0, 1]


def test_several_boxes_may_share_one_predecessor():
    links, n = links_for([[C], [A, B]])
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, 0, 0]


@pytest.mark.parametrize("gap, linked", [(4, True), (5, True), (6, False)])
def test_window_is_five_frames_including_empty_ones(gap, linked):
    frames = [[A]] + [[] for _ in range(gap - 1)] + [[A]]
    links, n = links_for(frames)
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, 0 if linked else -1]


def test_dropped_boxes_leave_the_window():
    # With the middle box not kept, C's best candidate is A of frame 0 (the window spans frames).
    links, n = links_for([[A], [[2, 0, 12, 10]], [C]])
    assert links.predecessors(np.array([True, True, True])).tolist() == [-1, 0, 1]
    assert links.predecessors(np.array([True, False, True])).tolist() == [-1, -1, 0]


def test_no_links_across_videos():
    links, n = links_for([[A], [A], [A]], videos=[0, 0, 1])
    assert links.predecessors(np.ones(n, dtype=bool)).tolist() == [-1, 0, -1]


def test_fp_sequences_counts_trees_and_the_90_percent_rule():
    # One tree of 3 boxes (C, then A and B both linked to C) and a lone box far away.
    links, n = links_for([[C], [A, B], [[50, 50, 60, 60]]])
    kept = np.ones(n, dtype=bool)
    assert links.fp_sequences_per_video(kept, np.array([True, True, True, True]), 1).tolist() == [0]
    # One wrong box makes the tree 2/3 correct: one FP sequence, not one per box.
    assert links.fp_sequences_per_video(kept, np.array([True, False, True, True]), 1).tolist() == [1]
    assert links.false_positive_boxes(kept, np.array([True, False, True, False])).tolist() == [True] * 4


def test_kept_boxes_must_be_candidates():
    boxes = np.array([A, A], dtype=float)
    links = TemporalLinks(boxes, np.array([0, 1]), np.array([0, 0]), np.array([0]), np.array([True, False]))
    with pytest.raises(ValueError, match="subset of the candidate boxes"):
        links.predecessors(np.array([True, True]))


def test_chunked_screening_gives_the_same_metrics(monkeypatch):
    """Tiny chunk budgets split frames (and their 5 context frames) and box groups across many
    chunks; every metric must come out as with one chunk."""
    import usvid.evaluation.fp_sequences as fp_sequences
    import usvid.evaluation.segment_ops as segment_ops
    from usvid.evaluation.video_metrics import evaluate_video_predictions

    rng = np.random.default_rng(3)
    predictions, ground_truths = {}, {}
    for video in range(3):
        tracks = rng.uniform(0, 60, size=(4, 2))
        frames_pred, frames_gt = [], []
        for _ in range(30):
            tracks += rng.normal(0, 1, tracks.shape)
            shown = rng.random(4) < 0.7  # tracks 0 and 1 are lesions, 2 and 3 decoys
            boxes = np.hstack([tracks[shown], tracks[shown] + 12])
            frames_pred.append(np.hstack([boxes + rng.normal(0, 1, boxes.shape), rng.random((len(boxes), 1))]))
            lesions = tracks[:2][shown[:2]]
            frames_gt.append(np.hstack([lesions, lesions + 12]))
        predictions[video], ground_truths[video] = frames_pred, frames_gt
    one_chunk = evaluate_video_predictions(predictions, ground_truths)
    assert one_chunk["FP80"] > 0  # the case links boxes and has false-positive sequences
    monkeypatch.setattr(fp_sequences, "_PAIRS_PER_CHUNK", 4)
    monkeypatch.setattr(segment_ops, "_PAIRS_PER_CHUNK", 3)
    many_chunks = evaluate_video_predictions(predictions, ground_truths)
    assert many_chunks == pytest.approx(one_chunk, nan_ok=True)
