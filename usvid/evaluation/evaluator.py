"""Evaluators with detectron2's interface, and the Ultrasound VID video evaluator.

An evaluator sees the test loader's inputs and the model's outputs frame by frame (``process``),
then computes its results once (``evaluate``). ``inference_on_video_dataset`` drives any of them
and also hands over the streaming speed it measured (``set_inference_fps``).
"""

import logging
import math
import numbers
from collections import OrderedDict
from typing import Dict, Iterable, Optional

from ..data import DatasetCatalog
from ..utils import comm
from .predictions_io import frame_prediction_from_instances
from .report import evaluate_frame_predictions

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "UltrasoundVideoEvaluator"]

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Base class (detectron2's): ``reset()``, then ``process(inputs, outputs)`` for every batch,
    then ``evaluate()`` returns ``{task: {metric: value}}`` on the main process."""

    def reset(self) -> None:
        """Prepare for a new round of evaluation."""

    def process(self, inputs, outputs) -> None:
        """Consume one batch: ``inputs`` as the model received them, ``outputs`` as it returned."""

    def evaluate(self):
        """The results of everything processed since ``reset()``."""

    def set_inference_fps(self, fps: float) -> None:
        """Receive the streaming-inference speed measured by the inference loop (frames/s)."""
        self.inference_fps = float(fps)


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run as one; their result dicts are merged (a task reported by two of
    them is an error rather than a silent overwrite)."""

    def __init__(self, evaluators: Iterable[DatasetEvaluator]):
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs, outputs) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self):
        results = OrderedDict()
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            if comm.is_main_process() and result is not None:
                for key, value in result.items():
                    if key in results:
                        raise KeyError(f"DatasetEvaluators: two evaluators both report {key!r}")
                    results[key] = value
        return results

    def set_inference_fps(self, fps: float) -> None:
        super().set_inference_fps(fps)
        for evaluator in self._evaluators:
            if hasattr(evaluator, "set_inference_fps"):
                evaluator.set_inference_fps(fps)


class UltrasoundVideoEvaluator(DatasetEvaluator):
    """The clinical video metrics (docs/en/metrics.md) and COCO AP of one registered dataset.

    Collects every frame's detections (``outputs[i]["instances"]`` with ``pred_boxes``, ``scores``,
    ``pred_classes`` in original-frame pixels), gathers them from all ranks, takes the ground
    truth from ``DatasetCatalog.get(dataset_name)`` and returns
    ``{"lesion_detection": {AP50, AP75, mAP, Pr70/80/90, FP70/80/90, R@16, COCO/AP, COCO/AP50,
    COCO/AP75, FPS, num_videos, num_frames, num_gt, num_dets}}`` on the main process ({}
    elsewhere). With ``output_dir`` the main process also writes predictions.json, metrics.json,
    per_video.csv and the plots there.

    Args:
        dataset_name: a name registered in ``DatasetCatalog``.
        output_dir: where to write the files (None: write nothing).
        fps: the videos' frame rate, for false-positive sequences per minute (not the inference
            speed, which the inference loop measures and reports as ``FPS``).
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None, fps: float = 30.0):
        if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"UltrasoundVideoEvaluator: fps (the videos' frame rate) must be > 0, got {fps!r}")
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.fps = float(fps)
        self.inference_fps = math.nan
        self._frames: Dict = {}

    def reset(self) -> None:
        self._frames = {}
        self.inference_fps = math.nan

    def process(self, inputs, outputs) -> None:
        for frame, output in zip(inputs, outputs):
            key = (frame["video_id"], int(frame["frame_idx"]))
            self._frames[key] = frame_prediction_from_instances(output["instances"], frame.get("file_name", ""))

    def evaluate(self):
        gathered = comm.gather(self._frames, dst=0)
        if not comm.is_main_process():
            return {}
        frame_predictions = {}
        for part in gathered:
            frame_predictions.update(part)
        if not frame_predictions:
            logger.warning(f"UltrasoundVideoEvaluator({self.dataset_name}): no predictions were processed")
            return {}
        return evaluate_frame_predictions(
            frame_predictions,
            DatasetCatalog.get(self.dataset_name),
            self.dataset_name,
            output_dir=self.output_dir,
            fps=self.fps,
            inference_fps=self.inference_fps,
        )
