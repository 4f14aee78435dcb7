"""Predecessor links of the false-positive sequences (METRICS.md FP_r step 4), tested directly on
usvid.evaluation.fp_sequences.TemporalLinks."""

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
