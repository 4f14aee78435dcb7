"""The evaluation plots are drawn for degenerate data too (no lesion, recall never reached)
without matplotlib warnings, and outside a training loop they only write files."""

import warnings

import numpy as np
import pytest
from PIL import Image

from usvid.evaluation.plots import save_metric_plots
from usvid.evaluation.video_metrics import VideoDetectionEvaluation

LESION = [0.0, 0.0, 10.0, 10.0]
CASES = {
    # Half the lesion boxes found: Pr and FP are NaN at every level.
    "recall_never_reached": (
        {"v": [np.array([LESION + [0.9]]), np.array([[50, 50, 60, 60, 0.8]])]},
        {"v": [np.array([LESION]), np.array([LESION])]},
    ),
    "no_lesion": ({"v": [np.array([LESION + [0.9]])]}, {"v": [np.zeros((0, 4))]}),
    "no_detection": ({"v": [np.zeros((0, 5))]}, {"v": [np.array([LESION])]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_degenerate_data_still_gives_three_readable_pngs(case, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the metric's "no ground truth" warning
        evaluation = VideoDetectionEvaluation(*CASES[case])
        metrics = evaluation.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "no artists with labels" legend warning
        paths = save_metric_plots(evaluation, metrics, str(tmp_path), title=case)
    assert sorted(paths) == ["fp_per_minute_vs_recall", "per_video_recall", "precision_recall"]
    for path in paths.values():
        with Image.open(path) as image:
            assert image.size == (640, 480)
