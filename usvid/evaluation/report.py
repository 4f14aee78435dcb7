"""From per-frame predictions to the ``lesion_detection`` results and their files: metrics.json,
per_video.csv, predictions.json and the plots; plus the log tables (detectron2's
``print_csv_format`` and a readable per-dataset table).

Shared by ``UltrasoundVideoEvaluator`` (after inference) and ``tools/eval_pred.py`` (saved
predictions), so a re-evaluation writes exactly what the original run wrote.
"""

import csv
import json
import logging
import math
import os
from collections import OrderedDict
from typing import Dict, Hashable, Mapping, Optional, Sequence, Tuple

from tabulate import tabulate

from ..utils.file_io import atomic_write
from .coco import coco_average_precision
from .plots import save_metric_plots
from .predictions_io import FramePrediction, align_with_videos, save_predictions_json
from .video_metrics import VideoDetectionEvaluation

__all__ = [
    "TASK",
    "evaluate_frame_predictions",
    "format_headline_metrics",
    "print_csv_format",
    "results_table",
    "score_thresholds",
]

logger = logging.getLogger(__name__)

TASK = "lesion_detection"
# Keys shown as percentages in the log table (fractions in the files and results).
PERCENT_KEYS = ("AP50", "AP75", "mAP", "Pr70", "Pr80", "Pr90", "R@16", "COCO/AP", "COCO/AP50", "COCO/AP75")
TABLE_KEYS = PERCENT_KEYS[:7] + ("FP70", "FP80", "FP90") + PERCENT_KEYS[7:] + ("FPS",)
# metrics.json key of the operating points: {"R70": score, "R80": score, "R90": score}, the score
# threshold at which the pooled detections reach each recall (what Pr_r and FP_r are measured
# at, so a deployed detector can run at the measured operating point). NaN when that recall is never reached.
SCORE_THRESHOLDS_KEY = "score_thresholds"
RECALLS = (0.7, 0.8, 0.9)


def score_thresholds(evaluation: VideoDetectionEvaluation) -> Dict[str, float]:
    """``{"R70": thr, "R80": thr, "R90": thr}``: the operating points of ``evaluation``."""
    return {f"R{round(100 * r)}": evaluation.score_threshold_at_recall(r) for r in RECALLS}


def evaluate_frame_predictions(
    frame_predictions: Mapping[Tuple[Hashable, int], FramePrediction],
    videos: Sequence[dict],
    dataset_name: str,
    output_dir: Optional[str] = None,
    fps: float = 30.0,
    inference_fps: float = math.nan,
) -> Dict[str, Dict[str, float]]:
    """``{"lesion_detection": {AP50, ..., R@16, COCO/AP, COCO/AP50, COCO/AP75, FPS, num_*}}``.

    ``fps`` is the videos' frame rate (FP sequences per minute); ``inference_fps`` the measured
    streaming-inference speed, reported as ``FPS`` (NaN when not measured). With ``output_dir``,
    writes predictions.json, metrics.json, per_video.csv and the plots there.
    """
    predictions, ground_truths = align_with_videos(frame_predictions, videos, dataset_name)
    evaluation = VideoDetectionEvaluation(predictions, ground_truths, fps=fps)
    metrics = evaluation.summary()
    video_metrics_keys = list(metrics)
    results = OrderedDict((key, metrics[key]) for key in video_metrics_keys if not key.startswith("num_"))
    results.update(coco_average_precision(predictions, ground_truths))
    results["FPS"] = float(inference_fps)
    results.update((key, metrics[key]) for key in video_metrics_keys if key.startswith("num_"))
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        save_predictions_json(os.path.join(output_dir, "predictions.json"), frame_predictions, dataset_name)
        with atomic_write(os.path.join(output_dir, "metrics.json"), "w") as f:
            json.dump(
                {
                    "dataset": dataset_name,
                    "fps": fps,
                    TASK: results,
                    SCORE_THRESHOLDS_KEY: score_thresholds(evaluation),
                },
                f,
                indent=2,
            )
        _write_per_video_csv(os.path.join(output_dir, "per_video.csv"), evaluation)
        save_metric_plots(evaluation, results, output_dir, title=dataset_name)
        logger.info(f"Evaluation of {dataset_name} written to {output_dir}")
    logger.info(f"Evaluation results for {dataset_name}:\n{results_table({TASK: results})}")
    return {TASK: dict(results)}


def _write_per_video_csv(path: str, evaluation: VideoDetectionEvaluation) -> None:
    """One row per video: frames, GT boxes, detections, R@16, and recall and FP sequences at the
    pooled score threshold of 80 % recall (NaN when that recall is never reached)."""
    rows = evaluation.per_video_rows(0.8)
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["video_id"])
        writer.writeheader()
        writer.writerows(rows)


def results_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A readable table of each task's headline numbers: AP, precision and recall in %, FP in
    sequences per minute, FPS in frames per second."""
    blocks = []
    for task, metrics in results.items():
        keys = [key for key in TABLE_KEYS if key in metrics]
        headers = [f"{key} (%)" if key in PERCENT_KEYS else key for key in keys]
        row = [100 * metrics[key] if key in PERCENT_KEYS else metrics[key] for key in keys]
        table = tabulate([row], headers=headers, floatfmt=".2f", tablefmt="pipe", missingval="nan")
        counts = ", ".join(f"{key[4:]} {int(metrics[key])}" for key in metrics if key.startswith("num_"))
        blocks.append(f"{task} ({counts}):\n{table}" if counts else f"{task}:\n{table}")
    return "\n".join(blocks)


def _headline_value(key: str, value: float) -> str:
    """One number of a console summary: fractions with three decimals, FP sequences per minute
    to three significant digits with their unit, FPS whole; NaN with the reason it is NaN."""
    if math.isnan(value):
        if key.startswith(("FP", "Pr")) and key[2:].isdigit():
            return f"n/a (recall 0.{key[2]} never reached)"
        return "n/a (not measured)" if key == "FPS" else "n/a"
    if key.startswith("FP") and key[2:].isdigit():
        return f"{value:.0f} /min" if value >= 100 else f"{value:.3g} /min"
    if key == "FPS":
        return f"{value:.0f}"
    return f"{value:.3f}"


def format_headline_metrics(metrics: Mapping[str, float], keys: Sequence[str]) -> str:
    """``keys`` of ``metrics`` on one line for a console summary, e.g. "AP50 0.745  FP80 306
    /min  FPS 58"; a NaN says why (e.g. "Pr80 n/a (recall 0.8 never reached)")."""
    return "  ".join(f"{key} {_headline_value(key, float(metrics.get(key, math.nan)))}" for key in keys)


def print_csv_format(results: Mapping) -> None:
    """Log results in detectron2's copy-paste format: per task a line of names and a line of
    values. Numbers are printed as computed (fractions; FP per minute; FPS)."""
    for task, metrics in results.items():
        if isinstance(metrics, Mapping):
            important = [(key, value) for key, value in metrics.items() if "-" not in key]
            logger.info(f"copypaste: Task: {task}")
            logger.info(f"copypaste: {','.join(key for key, _ in important)}")
            logger.info(f"copypaste: {','.join(f'{value:.4f}' for _, value in important)}")
        else:
            logger.info(f"copypaste: {task}={metrics}")
