"""Render a test video with ground truth and predictions to an MP4 and a PNG contact sheet
(tools/visualize.py, and the video at the end of ``make demo``).

What the picture shows (so a reader can judge a detector at a glance):
* ground-truth lesion boxes in green;
* the detections kept at the operating point (score above the threshold at which the pooled
  curve reaches ``recall``, the threshold FP80 is measured at), coloured by score (dark purple =
  just above the threshold, yellow = certain) with the score written next to the box;
* detections that belong to a false-positive sequence (docs/en/metrics.md: linked through time,
  not > 90 % on a lesion) drawn thick in red with "FP" — these are the false alarms the operator
  would see;
* a header with the video, the frame index and the threshold;
* under the contact sheet, a legend of these colours.

The drawing itself (colours, MP4 writer, contact sheet) is usvid.evaluation.drawing, shared with
tools/predict.py.
"""

import os
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from usvid.data.mapper import read_frame
from usvid.evaluation.drawing import contact_sheet, render_frame, write_mp4
from usvid.evaluation.predictions_io import align_with_videos, load_predictions_json
from usvid.evaluation.video_metrics import VideoDetectionEvaluation

from .saved_predictions import GroundTruthSource


def false_positive_flags(
    detections: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray], threshold: float
) -> List[np.ndarray]:
    """Per frame of one video, per detection: kept (``score > threshold``) and part of a
    false-positive sequence — computed by the FP metric itself, so the red boxes are exactly the
    ones FP_r counts."""
    evaluation = VideoDetectionEvaluation({"video": detections}, {"video": ground_truth})
    return evaluation.false_positive_box_flags(threshold)["video"]


def operating_threshold(predictions: Dict, ground_truths: Dict, recall: float) -> float:
    """The score at which the pooled detections reach ``recall`` (the FP_r operating point);
    NaN when they never do."""
    return VideoDetectionEvaluation(predictions, ground_truths).score_threshold_at_recall(recall)


def visualize_video(
    video: dict,
    detections: Sequence[np.ndarray],
    threshold: float,
    output_dir: str,
    fps: float = 30.0,
    min_side: int = 384,
) -> Dict[str, str]:
    """Render one video (a usvid video dict) with its per-frame ``(K, 5)`` detections: writes
    ``<output_dir>/<video>.mp4`` and ``<video>_contact.png``; returns their paths."""
    ground_truth = [
        np.array([a["bbox"] for a in f["annotations"]], dtype=np.float64).reshape(-1, 4) for f in video["frames"]
    ]
    if len(detections) != len(ground_truth):
        raise ValueError(
            f"video {video['video_id']!r}: {len(detections)} prediction frames for "
            f"{len(ground_truth)} frames in the dataset"
        )
    flags = false_positive_flags(detections, ground_truth, threshold)
    scale = max(1.0, min_side / min(video["height"], video["width"]))
    rendered = []
    for position, frame in enumerate(video["frames"]):
        kept = np.asarray(detections[position]).reshape(-1, 5)[:, 4] > threshold
        caption = (
            f"{video['video_id']}  frame {frame['frame_idx']} ({position + 1}/{len(video['frames'])})"
            f"  thr {threshold:.2f}  false-alarm boxes: {int(flags[position][kept].sum())}"
        )
        rendered.append(
            render_frame(
                read_frame(frame["file_name"], "BGR"),
                ground_truth[position],
                np.asarray(detections[position]).reshape(-1, 5)[kept],
                flags[position][kept],
                caption,
                threshold,
                scale,
            )
        )
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.join(output_dir, str(video["video_id"]).replace(os.sep, "_"))
    contact_path = stem + "_contact.png"
    cv2.imwrite(contact_path, contact_sheet(rendered, threshold=threshold))
    return {"video": write_mp4(rendered, stem + ".mp4", fps), "contact_sheet": contact_path}


def pick_video(videos: Sequence[dict]) -> dict:
    """The video with the most lesion frames (the most to look at)."""
    return max(videos, key=lambda v: (sum(bool(f["annotations"]) for f in v["frames"]), len(v["frames"])))


def visualize_predictions(
    predictions_json: str,
    videos: Sequence[dict],
    dataset_name: str,
    output_dir: str,
    video_ids: Optional[Sequence[str]] = None,
    recall: float = 0.8,
    score_threshold: Optional[float] = None,
    fps: float = 30.0,
) -> List[Dict[str, str]]:
    """Render the videos ``video_ids`` (default: the one with most lesion frames) of a
    predictions.json against the dataset ``videos``. The threshold is ``score_threshold``, or the
    operating point at ``recall`` over all predicted videos (0.5 if that recall is never reached).
    Returns the written paths per video."""
    _, frame_predictions = load_predictions_json(predictions_json)
    predictions, ground_truths = align_with_videos(frame_predictions, videos, dataset_name)
    if score_threshold is None:
        score_threshold = operating_threshold(predictions, ground_truths, recall)
        if score_threshold != score_threshold:  # NaN: the recall is never reached
            score_threshold = 0.5
    predicted = [v for v in videos if v["video_id"] in predictions]
    if video_ids:
        by_name = {str(v["video_id"]): v for v in predicted}
        missing = [i for i in video_ids if i not in by_name]
        if missing:
            raise ValueError(
                f"videos {missing} are not among the predicted videos of {predictions_json}; "
                f"known: {sorted(by_name)[:20]}"
            )
        chosen = [by_name[i] for i in video_ids]
    else:
        chosen = [pick_video(predicted)]
    return [visualize_video(v, predictions[v["video_id"]], score_threshold, output_dir, fps) for v in chosen]


def render_saved_predictions(
    predictions_json: str,
    ground_truth: GroundTruthSource,
    output_dir: str = "",
    video_ids: Sequence[str] = (),
    recall: float = 0.8,
    score_threshold: Optional[float] = None,
    fps: float = 30.0,
) -> List[Dict[str, str]]:
    """tools/visualize.py: :func:`visualize_predictions` of a predictions.json against
    ``ground_truth`` (with neither a dataset nor a JSON file named: the dataset the predictions
    file names). Writes into ``output_dir`` (default: ``visualization/`` next to the
    predictions), prints each written pair of paths and returns them."""
    if not ground_truth.dataset_json and not ground_truth.dataset:
        dataset = load_predictions_json(predictions_json)[0]
        if not dataset:
            raise ValueError(f"{predictions_json} names no dataset: pass --dataset or --dataset-json")
        ground_truth = replace(ground_truth, dataset=dataset)
    name, videos = ground_truth.load()
    output_dir = output_dir or os.path.join(os.path.dirname(os.path.abspath(predictions_json)), "visualization")
    written = visualize_predictions(predictions_json, videos, name, output_dir, video_ids, recall, score_threshold, fps)
    for paths in written:
        print(f"wrote {paths['video']} and {paths['contact_sheet']}")
    return written
