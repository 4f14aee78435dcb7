"""Evaluation of video lesion detectors: the clinical video metrics (docs/en/metrics.md), COCO AP,
detectron2-style evaluators, streaming inference and the reports they write."""

from .coco import coco_average_precision
from .evaluator import DatasetEvaluator, DatasetEvaluators, UltrasoundVideoEvaluator
from .inference import inference_context, inference_on_video_dataset
from .predictions_io import load_predictions_json, save_predictions_json
from .report import evaluate_frame_predictions, format_headline_metrics, print_csv_format, results_table
from .video_metrics import VideoDetectionEvaluation, evaluate_video_predictions

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "UltrasoundVideoEvaluator",
    "VideoDetectionEvaluation",
    "coco_average_precision",
    "evaluate_frame_predictions",
    "evaluate_video_predictions",
    "format_headline_metrics",
    "inference_context",
    "inference_on_video_dataset",
    "load_predictions_json",
    "print_csv_format",
    "results_table",
    "save_predictions_json",
]
