"""The flow of tools/predict.py: any video in, detections out.

For each input (a video file, a folder of frames, a DICOM file) it writes
``<output>/<name>_detections.mp4`` (the frames with the detections above the score threshold
drawn as tools/visualize.py draws them, and a colour legend) and ``<name>_predictions.json``
(every box the model outputs, in the evaluation's predictions.json format: one video, frame_idx
from 0, boxes in the original frame's pixels). Both are written under temporary names and
renamed only once the whole input went through, so a bad input leaves no partial output.
"""

import glob
import json
import logging
import math
import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from usvid.config import ConfigError
from usvid.data.imaging_region import find_imaging_region
from usvid.data.video_input import FrameSource, open_frame_source
from usvid.evaluation.drawing import Mp4Writer, render_frame, with_legend
from usvid.evaluation.predictions_io import frame_prediction_from_instances, save_predictions_json

from .predictor import VideoPredictor

__all__ = ["DEFAULT_SCORE_THRESHOLD", "operating_point_threshold", "predict_source", "predict_inputs"]

logger = logging.getLogger(__name__)

DEFAULT_SCORE_THRESHOLD = 0.5  # the drawing's threshold when neither --score-threshold nor --operating-point
MIN_DRAWN_SIDE = 384  # small frames are enlarged in the drawing so boxes and text stay legible


def operating_point_threshold(run_dir: str, recall_key: str = "R80") -> Tuple[float, str]:
    """(score threshold, metrics.json it came from): the threshold at which the evaluation of the
    training run ``run_dir`` reached recall 0.8, as its metrics.json records it (a run folder
    with one evaluated test set, or that test set's inference folder)."""
    candidates = [os.path.join(run_dir, "metrics.json")] + sorted(
        glob.glob(os.path.join(run_dir, "inference", "*", "metrics.json"))
    )
    found = []
    for path in candidates:
        content = _evaluation_metrics(path)
        if isinstance(content, dict) and "score_thresholds" in content:
            found.append((path, content["score_thresholds"]))
    if not found:
        raise FileNotFoundError(
            f"--operating-point {run_dir}: no evaluation metrics.json with 'score_thresholds' in it or in "
            f"{os.path.join(run_dir, 'inference', '<dataset>')}; evaluate the run first (train_net.py --eval-only)"
        )
    if len(found) > 1:
        raise ConfigError(
            f"--operating-point {run_dir}: {len(found)} evaluations ({', '.join(p for p, _ in found)}); "
            "name one of their folders"
        )
    path, thresholds = found[0]
    threshold = float(thresholds.get(recall_key, math.nan))
    if math.isnan(threshold):
        raise ConfigError(
            f"{path}: the evaluation never reached recall 0.8, so it has no operating point; "
            "pass --score-threshold instead"
        )
    return threshold, path


def _evaluation_metrics(path: str):
    """The JSON object of an evaluation's metrics.json; None when there is no such file or it is
    a training run's metrics.json (one JSON object per line, the training curves)."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None


def _region_frames(source: FrameSource) -> List[np.ndarray]:
    """Frames spread over the input for finding the imaging region (a stride keeps memory small)."""
    stride = max(1, (source.num_frames or 0) // 64)
    return [frame for i, frame in enumerate(source.frames()) if i % stride == 0]


def predict_source(
    predictor: VideoPredictor, source: FrameSource, output_dir: str, threshold: float, crop: str = "none"
) -> Dict[str, object]:
    """Run ``predictor`` over ``source`` and write its two files; returns their paths, the
    number of frames and the model's frames per second."""
    region = find_imaging_region(_region_frames(source)) if crop == "auto" else None
    x0, y0 = (region[0], region[1]) if region else (0, 0)
    paths = {
        "video": os.path.join(output_dir, f"{source.name}_detections.mp4"),
        "predictions": os.path.join(output_dir, f"{source.name}_predictions.json"),
    }
    temporary = {key: f"{os.path.splitext(p)[0]}.tmp-{os.getpid()}{os.path.splitext(p)[1]}" for key, p in paths.items()}
    frame_predictions, model_seconds = {}, 0.0
    predictor.reset()
    try:
        with (
            Mp4Writer(temporary["video"], source.fps) as writer,
            tqdm(total=source.num_frames, desc=source.name, unit="frame", dynamic_ncols=True) as bar,
        ):
            for index, frame in enumerate(source.frames()):
                start = time.perf_counter()
                view = frame if region is None else frame[region[1] : region[3], region[0] : region[2]]
                prediction = frame_prediction_from_instances(predictor(view)["instances"])
                model_seconds += time.perf_counter() - start
                prediction["boxes"] = prediction["boxes"] + np.array([x0, y0, x0, y0], dtype=np.float64)
                frame_predictions[(source.name, index)] = prediction
                writer.write(_drawn(frame, prediction, threshold, f"{source.name}  frame {index}", region))
                bar.update(1)
                bar.set_postfix(fps=f"{(index + 1) / model_seconds:.1f}", refresh=False)
        save_predictions_json(temporary["predictions"], frame_predictions, source.path)
        for key, path in paths.items():
            os.replace(temporary[key], path)
    finally:
        for path in temporary.values():
            if os.path.exists(path):
                os.remove(path)
    return {**paths, "frames": len(frame_predictions), "fps": len(frame_predictions) / max(model_seconds, 1e-9)}


def _drawn(
    frame: np.ndarray, prediction: dict, threshold: float, caption: str, region: Optional[Tuple[int, int, int, int]]
) -> np.ndarray:
    detections = np.hstack([prediction["boxes"], prediction["scores"][:, None]])
    kept = detections[detections[:, 4] > threshold]
    scale = max(1.0, MIN_DRAWN_SIDE / min(frame.shape[:2]))
    image = frame if frame.dtype == np.uint8 else (frame >> 8).astype(np.uint8)
    drawn = render_frame(
        image,
        np.zeros((0, 4)),
        kept,
        np.zeros(len(kept), bool),
        f"{caption}  thr {threshold:.2f}  boxes {len(kept)}" + ("  (cropped)" if region else ""),
        threshold,
        scale,
    )
    return with_legend(drawn, threshold, ground_truth=False, false_positives=False)


def predict_inputs(
    cfg,
    weights: str,
    inputs: List[str],
    output_dir: str,
    threshold: Optional[float] = None,
    operating_point: str = "",
    crop: str = "none",
    fps: Optional[float] = None,
) -> List[Dict[str, object]]:
    """Check every input and the threshold, load the weights once, then predict each input in
    turn, printing a last line per input with its frames, speed and files. ``fps``: the frame
    rate of inputs that carry none (frame folders), for the drawn MP4."""
    sources = [open_frame_source(path, fps) for path in inputs]
    if operating_point:
        threshold, where = operating_point_threshold(operating_point)
        print(f"score threshold {threshold:.3f}: recall 0.8 of the evaluation in {where} (where its FP80 was measured)")
    elif threshold is None:
        threshold = DEFAULT_SCORE_THRESHOLD
    predictor = VideoPredictor(cfg, weights)
    os.makedirs(output_dir, exist_ok=True)
    results = []
    for source in sources:
        result = predict_source(predictor, source, output_dir, threshold, crop)
        print(
            f"{source.name}: {result['frames']} frames at {result['fps']:.1f} FPS -> {result['video']}, "
            f"{result['predictions']}"
        )
        results.append(result)
    return results
