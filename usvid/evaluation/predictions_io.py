"""Per-frame predictions: from model outputs, to and from ``predictions.json``, and aligned with a
dataset's video dicts into the arrays the video metrics take (docs/en/metrics.md, "Input").

``predictions.json`` is what ``tools/eval_pred.py`` re-evaluates without the model, so its
format is the one contract between a run and later re-evaluations::

    {"dataset": "phantom_test",
     "videos": [{"video_id": 3,
                 "frames": [{"frame_idx": 0, "file_name": ".../000000.png",
                             "boxes": [[x1, y1, x2, y2], ...], "scores": [...], "classes": [...]}]}]}

Boxes are absolute XYXY pixels of the original frame. Video ids keep their JSON type (int or
str), which is why videos are a list rather than an object keyed by id.
"""

import json
import warnings
from typing import Dict, Hashable, List, Mapping, Sequence, Tuple

import numpy as np

from ..data.datasets.validation import read_json
from ..utils.file_io import atomic_write

__all__ = [
    "FramePrediction",
    "frame_prediction_from_instances",
    "ground_truth_arrays",
    "align_with_videos",
    "save_predictions_json",
    "load_predictions_json",
]

# {"boxes": (K, 4) float64, "scores": (K,) float64, "classes": (K,) int64, "file_name": str}
FramePrediction = Dict[str, object]
FrameKey = Tuple[Hashable, int]


def frame_prediction_from_instances(instances, file_name: str = "") -> FramePrediction:
    """A frame's prediction from a model's ``Instances`` (pred_boxes, scores, optional
    pred_classes), moved to CPU NumPy."""
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.detach().numpy().astype(np.float64).reshape(-1, 4)
    scores = instances.scores.detach().numpy().astype(np.float64).reshape(-1)
    if instances.has("pred_classes"):
        classes = instances.pred_classes.detach().numpy().astype(np.int64).reshape(-1)
    else:
        classes = np.zeros(len(scores), dtype=np.int64)
    return {"boxes": boxes, "scores": scores, "classes": classes, "file_name": file_name}


def ground_truth_arrays(videos: Sequence[dict]) -> Dict[Hashable, List[np.ndarray]]:
    """``{video_id: [(G, 4) array per frame]}`` from video dicts, frames in list order."""
    return {
        video["video_id"]: [
            np.asarray([a["bbox"] for a in frame["annotations"]], dtype=np.float64).reshape(-1, 4)
            for frame in video["frames"]
        ]
        for video in videos
    }


def align_with_videos(
    frame_predictions: Mapping[FrameKey, FramePrediction], videos: Sequence[dict], dataset_name: str
) -> Tuple[Dict[Hashable, List[np.ndarray]], Dict[Hashable, List[np.ndarray]]]:
    """``(predictions, ground_truths)`` as the video metrics take them, for the videos that have
    predictions. Detections of every class count as lesions (the metrics are class-agnostic).

    A video with predictions for only some of its frames is an error (the metrics would treat the
    missing frames as empty and report too few false alarms). Videos with no prediction at all
    are left out with a warning, as detectron2 evaluates only the images it received.
    """
    predicted_videos = {video_id for video_id, _ in frame_predictions}
    known_videos = {video["video_id"] for video in videos}
    unknown = sorted(predicted_videos - known_videos, key=repr)
    if unknown:
        raise ValueError(
            f"predictions for videos {unknown[:10]!r} that dataset {dataset_name!r} does not have "
            f"(it has {len(known_videos)} videos, e.g. {sorted(known_videos, key=repr)[:5]!r})"
        )
    skipped = [video["video_id"] for video in videos if video["video_id"] not in predicted_videos]
    if skipped:
        warnings.warn(
            f"{dataset_name}: {len(skipped)} of {len(videos)} videos have no predictions and are not "
            f"evaluated: {skipped[:10]!r}",
            RuntimeWarning,
            stacklevel=2,
        )
    evaluated = [video for video in videos if video["video_id"] in predicted_videos]
    predictions: Dict[Hashable, List[np.ndarray]] = {}
    for video in evaluated:
        frames = []
        for frame in video["frames"]:
            key = (video["video_id"], frame["frame_idx"])
            if key not in frame_predictions:
                raise ValueError(
                    f"{dataset_name}: video {video['video_id']!r} has predictions for some frames but "
                    f"not for frame_idx {frame['frame_idx']} ({frame.get('file_name', '')}); every "
                    "frame of an evaluated video needs a prediction (possibly empty)"
                )
            prediction = frame_predictions[key]
            frames.append(np.hstack([prediction["boxes"], np.asarray(prediction["scores"])[:, None]]))
        predictions[video["video_id"]] = frames
    return predictions, ground_truth_arrays(evaluated)


def save_predictions_json(path: str, frame_predictions: Mapping[FrameKey, FramePrediction], dataset_name: str) -> None:
    """Write ``predictions.json`` (videos in order of first appearance, frames by frame_idx)."""
    by_video: Dict[Hashable, List[dict]] = {}
    for (video_id, frame_idx), prediction in frame_predictions.items():
        by_video.setdefault(video_id, []).append(
            {
                "frame_idx": int(frame_idx),
                "file_name": prediction.get("file_name", ""),
                "boxes": np.asarray(prediction["boxes"]).tolist(),
                "scores": np.asarray(prediction["scores"]).tolist(),
                "classes": np.asarray(prediction["classes"]).tolist(),
            }
        )
    videos = [
        {"video_id": video_id, "frames": sorted(frames, key=lambda f: f["frame_idx"])}
        for video_id, frames in by_video.items()
    ]
    with atomic_write(path, "w") as f:
        json.dump({"dataset": dataset_name, "videos": videos}, f)


def load_predictions_json(path: str) -> Tuple[str, Dict[FrameKey, FramePrediction]]:
    """``(dataset name, {(video_id, frame_idx): prediction})`` from a ``predictions.json``;
    errors name the file and the entry that does not fit the format."""
    content = read_json(path, what="predictions file")
    if not isinstance(content, dict) or not isinstance(content.get("videos"), list):
        raise ValueError(f"{path}: expected an object with a 'videos' list (usvid predictions.json format)")
    frame_predictions: Dict[FrameKey, FramePrediction] = {}
    for v, video in enumerate(content["videos"]):
        if not isinstance(video, dict) or not isinstance(video.get("frames"), list):
            keys = sorted(video) if isinstance(video, dict) else type(video).__name__
            raise ValueError(f"{path}: videos[{v}] needs a 'video_id' and a 'frames' list; it has {keys}")
        for i, frame in enumerate(video["frames"]):
            where = f"{path}: videos[{v}] (video_id {video.get('video_id')!r}) frames[{i}]"
            try:
                boxes = np.asarray(frame["boxes"], dtype=np.float64).reshape(-1, 4)
                scores = np.asarray(frame["scores"], dtype=np.float64).reshape(-1)
                classes = np.asarray(frame.get("classes", [0] * len(scores)), dtype=np.int64).reshape(-1)
                key = (video["video_id"], int(frame["frame_idx"]))
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"{where}: {error!r}; a frame needs 'frame_idx', 'boxes' [[x1, y1, x2, y2], ...] and 'scores'"
                ) from None
            if not (len(boxes) == len(scores) == len(classes)):
                raise ValueError(f"{where}: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes")
            if key in frame_predictions:
                raise ValueError(f"{where}: a second prediction for frame_idx {key[1]} of this video")
            frame_predictions[key] = {
                "boxes": boxes,
                "scores": scores,
                "classes": classes,
                "file_name": frame.get("file_name", ""),
            }
    if not frame_predictions:
        raise ValueError(f"{path}: holds no frame predictions ({len(content['videos'])} videos, none with frames)")
    return content.get("dataset", ""), frame_predictions
