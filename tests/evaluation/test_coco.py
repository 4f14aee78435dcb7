"""COCO AP by faster-coco-eval against our VOC AP50: equal where the protocols must agree, and
the documented 101-point difference computed by hand where they do not."""

import math

import numpy as np
import pytest

from usvid.evaluation.coco import coco_average_precision
from usvid.evaluation.video_metrics import evaluate_video_predictions

LESION = [0.0, 0.0, 10.0, 10.0]
FAR = [50.0, 50.0, 60.0, 60.0]
NO_GT = np.zeros((0, 4))


def one_box_per_frame(frames):
    """frames: (box, score, is_lesion_frame) per frame -> (predictions, ground truths)."""
    predictions = {"v": [np.array([box + [score]]) for box, score, _ in frames]}
    ground_truths = {"v": [np.array([LESION]) if lesion else NO_GT for _, _, lesion in frames]}
    return predictions, ground_truths


def test_agrees_with_ap50_when_the_precision_envelope_is_flat():
    # One box per frame, distinct scores: a false box ranked first, then the 4 lesion boxes.
    # Precision at recall 1 is 4/5 and is the envelope over all of [0, 1], so the 101 COCO samples
    # and the VOC area are both 4/5.
    frames = [(FAR, 0.99, False)] + [(LESION, 0.9 - 0.1 * i, True) for i in range(4)]
    predictions, ground_truths = one_box_per_frame(frames)
    coco = coco_average_precision(predictions, ground_truths)
    ours = evaluate_video_predictions(predictions, ground_truths)
    assert ours["AP50"] == pytest.approx(0.8)
    assert coco["COCO/AP50"] == pytest.approx(ours["AP50"], abs=1e-9)
    assert coco["COCO/AP"] == pytest.approx(ours["mAP"], abs=1e-9)


def test_perfect_detector_is_one_in_both():
    frames = [(LESION, 0.5 + 0.01 * i, True) for i in range(6)]
    predictions, ground_truths = one_box_per_frame(frames)
    assert coco_average_precision(predictions, ground_truths) == {"COCO/AP": 1.0, "COCO/AP50": 1.0, "COCO/AP75": 1.0}


def test_differs_by_the_101_point_sampling():
    # TP .9, FP .8, TP .5, TP .4 with 3 lesions: recall 1/3 1/3 2/3 1, precision 1 1/2 2/3 3/4;
    # envelope 1 up to recall 1/3, then 3/4.
    # VOC area: 1/3 * 1 + 2/3 * 3/4 = 5/6.
    # COCO: recall samples 0, .01, ..., .33 (34 of them) see 1, the 67 others see 3/4:
    # (34 + 67 * 3/4) / 101 = 84.25 / 101.
    frames = [(LESION, 0.9, True), (FAR, 0.8, False), (LESION, 0.5, True), (LESION, 0.4, True)]
    predictions, ground_truths = one_box_per_frame(frames)
    assert evaluate_video_predictions(predictions, ground_truths)["AP50"] == pytest.approx(5 / 6)
    assert coco_average_precision(predictions, ground_truths)["COCO/AP50"] == pytest.approx(84.25 / 101)


def test_edge_cases():
    no_gt = coco_average_precision({"v": [np.array([LESION + [0.9]])]}, {"v": [NO_GT]})
    assert all(math.isnan(v) for v in no_gt.values())
    no_dets = coco_average_precision({"v": [np.zeros((0, 5))]}, {"v": [np.array([LESION])]})
    assert no_dets == {"COCO/AP": 0.0, "COCO/AP50": 0.0, "COCO/AP75": 0.0}
    with pytest.raises(ValueError, match="video 'v': 1 prediction frames but 2 ground-truth"):
        coco_average_precision({"v": [np.zeros((0, 5))]}, {"v": [NO_GT, NO_GT]})
