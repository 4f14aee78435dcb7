"""Property tests of the video metrics (hypothesis) and a comparison with a literal, loop-by-loop
transcription of docs/en/metrics.md ("Exact definitions") on random small videos full of ties and overlaps."""

import math
import warnings
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usvid.evaluation.video_metrics import evaluate_video_predictions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ("AP50", "AP75", "mAP", "Pr70", "Pr80", "Pr90", "FP70", "FP80", "FP90", "R@16")

# ---------------------------------------------------------------------------------------------
# Random videos: boxes on a small grid (many overlaps, equal IoUs, zero-area boxes) and scores
# from a short list (many ties), so every tie rule is exercised. Hypothesis draws the sizes and a
# seed and NumPy draws the boxes: building hundreds of boxes from hypothesis primitives costs
# seconds per test, over the suite's time budget.

SCORES = np.array([0.1, 0.25, 0.5, 0.75, 0.9])


def grid_boxes(rng, count, min_extent=0):
    corner = rng.integers(0, 13, size=(count, 2))
    extent = rng.integers(min_extent, 9, size=(count, 2))
    return np.hstack([corner, corner + extent]).astype(float)


def random_video(rng, num_frames, max_dets):
    """Frames of one video: a few objects (lesions or decoys) that persist from frame to frame with
    a little jitter, so boxes link into sequences, plus random boxes anywhere."""
    num_objects = int(rng.integers(1, 4))
    objects, is_lesion = grid_boxes(rng, num_objects, min_extent=3), rng.random(num_objects) < 0.6
    predictions, ground_truths = [], []
    for _ in range(num_frames):
        present = rng.random(num_objects) < 0.6
        detected = present | (rng.random(num_objects) < 0.3)
        jitter = rng.choice([0, 0, 1, -1], size=(num_objects, 4))
        rows = np.vstack([(objects + jitter)[detected], grid_boxes(rng, int(rng.integers(0, max_dets + 1)))])
        rows = rng.permutation(rows)[:max_dets]
        predictions.append(np.hstack([rows, rng.choice(SCORES, size=(len(rows), 1))]))
        ground_truths.append(objects[present & is_lesion])
    return predictions, ground_truths


@st.composite
def video_set(draw, max_dets=5):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    predictions, ground_truths = {}, {}
    for index in range(draw(st.integers(1, 3))):
        num_frames = draw(st.integers(1, 9))
        predictions[f"v{index}"], ground_truths[f"v{index}"] = random_video(rng, num_frames, max_dets)
    return predictions, ground_truths


def new_box(draw):
    corner = [draw(st.integers(0, 12)), draw(st.integers(0, 12))]
    extent = [draw(st.integers(0, 8)), draw(st.integers(0, 8))]
    return [float(c) for c in corner + [corner[0] + extent[0], corner[1] + extent[1]]]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9)


def quiet_metrics(predictions, ground_truths):
    """The metrics without the no-ground-truth warning (random cases often have no lesion)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return evaluate_video_predictions(predictions, ground_truths)


# ---------------------------------------------------------------------------------------------
# The literal transcription: plain loops, one statement of docs/en/metrics.md after the other.


def ref_iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_match(frame_dets, frame_gts, t, top=None):
    """Per-frame greedy matching: TP flags per detection (input order) and matched GT count."""
    order = sorted(range(len(frame_dets)), key=lambda i: -frame_dets[i][4])
    if top is not None:
        order = order[:top]
    taken = [False] * len(frame_gts)
    is_tp = [False] * len(frame_dets)
    for i in order:
        if not len(frame_gts):
            continue
        ious = [ref_iou(frame_dets[i], g) for g in frame_gts]
        best = ious.index(max(ious))
        if ious[best] >= t and not taken[best]:
            taken[best] = True
            is_tp[i] = True
    return is_tp, sum(taken)


def reference_metrics(predictions, ground_truths, fps=30.0):
    videos = sorted(predictions)
    frames = [(v, p, g) for v in videos for p, g in zip(predictions[v], ground_truths[v])]
    num_gt = sum(len(g) for _, _, g in frames)
    if num_gt == 0:
        return {k: math.nan for k in KEYS}

    def curve(t):
        pooled = []
        for _, p, g in frames:
            is_tp, _ = ref_match(p, g, t)
            pooled += [(p[i][4], is_tp[i]) for i in range(len(p))]
        pooled.sort(key=lambda item: -item[0])
        tp = fp = 0
        recall, precision, scores = [], [], []
        for s, is_tp in pooled:
            tp, fp = tp + is_tp, fp + (not is_tp)
            recall.append(tp / num_gt)
            precision.append(tp / (tp + fp))
            scores.append(s)
        return recall, precision, scores

    def ap(t):
        recall, precision, _ = curve(t)
        mrec, mpre = [0.0] + recall + [1.0], [0.0] + precision + [0.0]
        for i in range(len(mpre) - 1, 0, -1):
            mpre[i - 1] = max(mpre[i - 1], mpre[i])
        return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])

    def fp_sequences(thr):
        count = 0
        for v in videos:
            boxes = []  # (box, correct, frame position)
            parent = []
            history = deque(maxlen=5)  # kept box indices of the previous 5 frames
            for p, g in zip(predictions[v], ground_truths[v]):
                current = []
                for row in p:
                    if row[4] > thr:
                        cx, cy = (row[0] + row[2]) / 2, (row[1] + row[3]) / 2
                        correct = any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in g)
                        best, best_iou = -1, -1.0
                        for earlier_frame in history:
                            for j in earlier_frame:
                                iou = ref_iou(row, boxes[j][0])
                                if iou > best_iou:
                                    best, best_iou = j, iou
                        boxes.append((row, correct))
                        parent.append(best if best_iou > 0.5 else len(boxes) - 1)
                        current.append(len(boxes) - 1)
                history.append(current)

            groups = {}
            for i, (_, correct) in enumerate(boxes):
                root = i
                while parent[root] != root:
                    root = parent[root]
                groups.setdefault(root, []).append(correct)
            count += sum(1 for flags in groups.values() if not sum(flags) / len(flags) > 0.9)
        return count

    recall, precision, scores = curve(0.5)
    # t = 0.50, 0.55, ..., 0.95 as the decimals they name (0.5 + 0.05 * 7 is 0.8500000000000001).
    thresholds = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    result = {"AP50": ap(0.5), "AP75": ap(0.75), "mAP": sum(ap(t) for t in thresholds) / 10}
    for r in (0.7, 0.8, 0.9):
        reached = bool(recall) and max(recall) >= r
        result[f"Pr{round(r * 100)}"] = float(np.interp(r, recall, precision)) if reached else math.nan
        thr = float(np.interp(r, recall, scores)) if reached else math.nan
        result[f"FP{round(r * 100)}"] = fp_sequences(thr) / len(frames) * 60 * fps if reached else math.nan
    result["R@16"] = sum(ref_match(p, g, 0.5, top=16)[1] for _, p, g in frames) / num_gt
    return result


@SETTINGS
@given(video_set())
def test_agrees_with_the_literal_transcription(case):
    predictions, ground_truths = case
    expected = reference_metrics(predictions, ground_truths)
    metrics = quiet_metrics(predictions, ground_truths)
    for key in KEYS:
        assert same(metrics[key], expected[key]), (key, metrics[key], expected[key])


def test_transcription_comparison_is_sensitive():
    """The reference is not vacuous: it distinguishes a swapped match from the real one."""
    lesion = np.array([[0.0, 0.0, 10.0, 10.0]])
    good = {"v": [np.array([[0.0, 0.0, 10.0, 10.0, 0.9]])]}
    bad = {"v": [np.array([[20.0, 20.0, 30.0, 30.0, 0.9]])]}
    assert reference_metrics(good, {"v": [lesion]})["AP50"] == 1.0
    assert reference_metrics(bad, {"v": [lesion]})["AP50"] == 0.0


# ---------------------------------------------------------------------------------------------
# Invariances


@SETTINGS
@given(video_set(max_dets=15), st.data())
def test_adding_a_detection_never_lowers_r16(case, data):
    """Matched lesions only grow when a box is added (a greedy match is never taken back), as long
    as no frame goes over the 16-box cap: beyond it, the new box can push a matching box out of
    the top 16 (test_r16_keeps_the_16_best_boxes_with_stable_ties)."""
    predictions, ground_truths = case
    video = data.draw(st.sampled_from(sorted(predictions)))
    frame = data.draw(st.integers(0, len(predictions[video]) - 1))
    new_row = np.array([new_box(data.draw) + [data.draw(st.sampled_from(SCORES.tolist()))]])
    position = data.draw(st.integers(0, len(predictions[video][frame])))
    grown = {v: list(frames) for v, frames in predictions.items()}
    grown[video][frame] = np.insert(predictions[video][frame], position, new_row, axis=0)
    before, after = quiet_metrics(predictions, ground_truths), quiet_metrics(grown, ground_truths)
    if math.isnan(before["R@16"]):
        assert math.isnan(after["R@16"])
    else:
        assert after["R@16"] >= before["R@16"]


@SETTINGS
@given(video_set())
def test_video_order_changes_nothing(case):
    predictions, ground_truths = case
    reversed_predictions = dict(reversed(list(predictions.items())))
    reversed_ground_truths = dict(reversed(list(ground_truths.items())))
    a = quiet_metrics(predictions, ground_truths)
    b = quiet_metrics(reversed_predictions, reversed_ground_truths)
    assert all(same(a[k], b[k]) for k in a)


@SETTINGS
@given(video_set(), st.integers(-6, 6))
def test_scaling_scores_changes_nothing(case, exponent):
    """Scores times 2**exponent: a power of two scales exactly in floating point, so thresholds
    interpolated between scores scale exactly too and "score > thr" keeps the same boxes."""
    predictions, ground_truths = case
    factor = 2.0**exponent
    scaled = {v: [np.hstack([f[:, :4], f[:, 4:] * factor]) for f in frames] for v, frames in predictions.items()}
    a, b = quiet_metrics(predictions, ground_truths), quiet_metrics(scaled, ground_truths)
    assert all(same(a[k], b[k]) for k in a)
