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


def _axes_after(draw, evaluation):
    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    draw(axes, evaluation, evaluation.summary())
    return axes


def test_fp_axis_is_logarithmic_and_zero_bars_are_marked():
    from usvid.evaluation.plots import ZERO_MARK_HEIGHT, _draw_fp_vs_recall, _draw_per_video_recall

    # Video "found": every lesion detected plus a far decoy every 6th frame (FP80 > 0);
    # video "missed": its lesion is never detected (recall 0, a bar of height zero).
    frames = 30
    found = [
        np.array([LESION + [0.5 + 0.01 * i]] + ([[50, 50, 60, 60, 0.9]] if i % 6 == 0 else [])) for i in range(frames)
    ]
    missed = [np.zeros((0, 5))] * 4
    evaluation = VideoDetectionEvaluation(
        {"found": found, "missed": missed}, {"found": [np.array([LESION])] * frames, "missed": [np.array([LESION])] * 4}
    )
    fp_axes = _axes_after(_draw_fp_vs_recall, evaluation)
    assert fp_axes.get_yscale() == "symlog"
    fp80 = evaluation.summary()["FP80"]
    assert fp80 > 100 and any(f"FP80 = {fp80:.3g} / min" == t.get_text() for t in fp_axes.get_legend().get_texts())
    bar_axes = _axes_after(_draw_per_video_recall, evaluation)
    (marks,) = [line for line in bar_axes.get_lines() if line.get_marker() == "x"]
    # Both bars of "missed" (the second video), none of "found".
    assert sorted(marks.get_xdata().tolist()) == [0.8, 1.2] and set(marks.get_ydata()) == {ZERO_MARK_HEIGHT}
