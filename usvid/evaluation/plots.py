"""Evaluation plots (PNG, headless): precision-recall with the Pr70/80/90 operating points, FP
sequences per minute against recall, and recall per video.

Every number drawn comes from ``VideoDetectionEvaluation`` (the metric itself), never from a
re-derivation here. Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot
global state, so it works in any thread and without a display) and, when an ``EventStorage`` is
open, also queued as images so TensorBoard shows them next to the training curves.
"""

import logging
import math
import os
from typing import Dict, Mapping

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..utils.events import active_event_storage
from .video_metrics import RECALL_LEVELS, VideoDetectionEvaluation

__all__ = ["save_metric_plots"]

logger = logging.getLogger(__name__)

# One marker shape per operating point, the same in both curves.
MARKERS = {0.7: "o", 0.8: "s", 0.9: "D"}
# FP sequences per minute span 0 to thousands: a symmetric-log axis, linear below this value
# (so 0 stays on the axis) and logarithmic above it, keeps the low-recall end readable instead of
# flat on zero next to the thousands reached at high recall.
FP_AXIS_LINEAR_BELOW = 1.0
# Bars of height zero are invisible; these heights draw a mark there instead (a fraction of the
# recall axis).
ZERO_MARK_HEIGHT = 0.02


def save_metric_plots(
    evaluation: VideoDetectionEvaluation, metrics: Mapping[str, float], output_dir: str, title: str = ""
) -> Dict[str, str]:
    """Draw the three plots into ``output_dir/<name>.png``; returns ``{name: path}``. With an
    open EventStorage each image is also put as ``<title>/<name>`` (or ``<name>``)."""
    os.makedirs(output_dir, exist_ok=True)
    drawers = {
        "precision_recall": _draw_precision_recall,
        "fp_per_minute_vs_recall": _draw_fp_vs_recall,
        "per_video_recall": _draw_per_video_recall,
    }
    paths = {}
    for name, draw in drawers.items():
        # Fixed margins instead of a layout engine, and one rendering shared by the PNG file and
        # the TensorBoard image: drawing dominates the plots' cost.
        figure = Figure(figsize=(6.4, 4.8), dpi=100)
        figure.subplots_adjust(left=0.11, right=0.97, top=0.92, bottom=0.18 if name == "per_video_recall" else 0.11)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        draw(axes, evaluation, metrics)
        if title:
            axes.set_title(f"{title}: {axes.get_title()}")
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        paths[name] = os.path.join(output_dir, f"{name}.png")
        Image.fromarray(rgb).save(paths[name])
        _put_in_event_storage(f"{title}/{name}" if title else name, rgb)
    return paths


def _put_in_event_storage(name: str, rgb: np.ndarray) -> None:
    storage = active_event_storage()
    if storage is None:  # no training loop around this evaluation: files only
        return
    storage.put_image(name, torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))))


def _no_data(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="gray")


def _draw_precision_recall(axes, evaluation: VideoDetectionEvaluation, metrics) -> None:
    axes.set_title(f"Precision-recall at IoU 0.5 (AP50 = {100 * metrics['AP50']:.1f})")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    curve = evaluation.pr_curve(0.5)
    if evaluation.num_gt == 0 or evaluation.num_dets == 0:
        _no_data(axes, "no ground truth" if evaluation.num_gt == 0 else "no detections")
        return
    axes.plot(curve.recall, curve.precision, color="tab:blue", linewidth=1.5, label="pooled detections")
    for r in RECALL_LEVELS:
        name, precision = f"Pr{round(r * 100)}", metrics[f"Pr{round(r * 100)}"]
        axes.axvline(r, color="gray", linestyle=":", linewidth=0.8)
        if math.isnan(precision):
            axes.plot([], [], " ", label=f"{name}: recall {r:.0%} never reached")
        else:
            axes.plot(
                [r], [precision], MARKERS[r], color="tab:red", markersize=7, label=f"{name} = {100 * precision:.1f} %"
            )
    axes.legend(loc="best")


def _draw_fp_vs_recall(axes, evaluation: VideoDetectionEvaluation, metrics) -> None:
    axes.set_title("False-positive sequences per minute vs recall")
    axes.set_xlabel("recall (score threshold set to reach it)")
    axes.set_ylabel(f"FP sequences / minute (log scale above {FP_AXIS_LINEAR_BELOW:g})")
    axes.set_yscale("symlog", linthresh=FP_AXIS_LINEAR_BELOW)
    axes.set_xlim(0, 1.02)
    axes.grid(alpha=0.3)
    recalls, fp_rates = evaluation.fp_rate_curve()
    if len(recalls) == 0:
        _no_data(axes, "no ground truth or no detections")
        return
    axes.plot(recalls, fp_rates, "-", color="tab:orange", linewidth=1.5)
    for r in RECALL_LEVELS:
        name, fp = f"FP{round(r * 100)}", metrics[f"FP{round(r * 100)}"]
        if math.isnan(fp):
            axes.plot([], [], " ", label=f"{name}: recall {r:.0%} never reached")
        else:
            axes.plot([r], [fp], MARKERS[r], color="tab:red", markersize=7, label=f"{name} = {fp:.3g} / min")
    axes.legend(loc="lower right")  # the curve rises with recall: that corner stays free
    axes.set_ylim(bottom=0)


def _draw_per_video_recall(axes, evaluation: VideoDetectionEvaluation, metrics) -> None:
    rows = [row for row in evaluation.per_video_rows(0.8) if row["gt_boxes"] > 0]
    axes.set_title("Recall per lesion video")
    axes.set_ylabel("recall")
    axes.set_ylim(0, 1.2)  # room for the legend above the bars
    axes.grid(alpha=0.3, axis="y")
    if not rows:
        _no_data(axes, "no video with lesions")
        return
    positions = np.arange(len(rows))
    width = 0.4
    r16 = np.array([row["R@16"] for row in rows], dtype=float)
    at_threshold = np.nan_to_num(np.array([row["recall_at_r80_threshold"] for row in rows], dtype=float))
    axes.bar(positions - width / 2, r16, width, label="R@16", color="tab:blue")
    axes.bar(positions + width / 2, at_threshold, width, color="tab:green", label="at the pooled 80 %-recall threshold")
    _mark_zero_bars(
        axes, np.concatenate([positions - width / 2, positions + width / 2]), np.concatenate([r16, at_threshold])
    )
    axes.set_xlabel("video")
    if len(rows) <= 40:  # beyond that the labels overlap; the order is per_video.csv's
        axes.set_xticks(positions, [str(row["video_id"]) for row in rows], rotation=90, fontsize=7)
    else:
        axes.set_xticks([])
    axes.legend(loc="upper center", ncol=3, fontsize=8)


def _mark_zero_bars(axes, positions: np.ndarray, heights: np.ndarray) -> None:
    """A red cross on every bar of height 0: a video where no lesion box was found must not
    look like a missing bar."""
    zero = heights == 0
    if zero.any():
        axes.plot(
            positions[zero],
            np.full(int(zero.sum()), ZERO_MARK_HEIGHT),
            "x",
            color="tab:red",
            markersize=6,
            label="recall 0",
        )
