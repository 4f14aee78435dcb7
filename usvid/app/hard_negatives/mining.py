"""Mining: the frames of the training videos that hold a false-positive sequence of the current
model at the operating point, found exactly as the FP metric finds its sequences."""

import logging
import math
from typing import Dict, Hashable, List, Mapping, Sequence

import numpy as np

from usvid.data import DatasetCatalog, build_video_detection_test_loader
from usvid.evaluation import DatasetEvaluator, inference_on_video_dataset
from usvid.evaluation.predictions_io import align_with_videos, frame_prediction_from_instances
from usvid.evaluation.video_metrics import VideoDetectionEvaluation
from usvid.utils import comm

from .mined_file import write_hard_negative_json

__all__ = ["mine_false_positive_frames", "mine_hard_negatives"]

logger = logging.getLogger(__name__)

VideoFrames = Sequence[np.ndarray]


def mine_false_positive_frames(
    predictions: Mapping[Hashable, VideoFrames],
    ground_truths: Mapping[Hashable, VideoFrames],
    recall: float = 0.8,
    by_video: bool = False,
) -> Dict[Hashable, List[int]]:
    """``{video_id: [frame positions]}``: the frames (indices into each video's frame list)
    holding at least one box of a false-positive sequence at the operating point of ``recall``.

    Inputs as in ``evaluate_video_predictions`` (docs/en/metrics.md). The operating threshold is
    the pooled score at which the detections reach ``recall``; with ``by_video`` each lesion video
    uses its own threshold at that recall instead (the pooled one for lesion-free videos and for
    videos that never reach it). Videos without mined frames are left out. When no threshold is
    defined (no lesion in the data, or ``recall`` never reached) nothing can be called a false
    alarm and the result is empty.
    """
    evaluation = VideoDetectionEvaluation(predictions, ground_truths)
    pooled = evaluation.score_threshold_at_recall(recall)
    if by_video:
        mined = {}
        for video_id in evaluation.video_ids:
            single = VideoDetectionEvaluation({video_id: predictions[video_id]}, {video_id: ground_truths[video_id]})
            own = single.score_threshold_at_recall(recall)
            threshold = pooled if math.isnan(own) else own
            if not math.isnan(threshold):
                mined.update(single.fp_sequence_frames(threshold))
    elif not math.isnan(pooled):
        mined = evaluation.fp_sequence_frames(pooled)
    else:
        mined = {}
    if math.isnan(pooled) and not mined:
        logger.warning(
            f"Hard-negative mining: the detections never reach recall {recall:.2f} on these videos (or "
            "they hold no lesion), so there is no operating point to call false alarms at"
        )
    return {video_id: frames for video_id, frames in mined.items() if frames}


class _FramePredictionCollector(DatasetEvaluator):
    """Collects every frame's detections and gathers them on the main process; ``evaluate()``
    returns ``{(video_id, frame_idx): frame prediction}`` there ({} elsewhere). Mining needs the
    raw detections only, not the metrics, files and plots of UltrasoundVideoEvaluator."""

    def reset(self):
        self._frames = {}

    def process(self, inputs, outputs):
        for frame, output in zip(inputs, outputs):
            key = (frame["video_id"], int(frame["frame_idx"]))
            self._frames[key] = frame_prediction_from_instances(output["instances"])

    def evaluate(self):
        gathered = comm.gather(self._frames, dst=0)
        merged = {}
        for part in gathered if comm.is_main_process() else []:
            merged.update(part)
        return merged


def mine_hard_negatives(model, cfg, output_path: str) -> str:
    """Run ``model`` over every dataset of DATASETS.TRAIN and write the frames with
    false-positive sequences to ``output_path`` (main process; every rank must call it)."""
    mined_by_dataset, videos_by_dataset = {}, {}
    for dataset_name in cfg.DATASETS.TRAIN:
        loader = build_video_detection_test_loader(cfg, dataset_name)
        frame_predictions = inference_on_video_dataset(model, loader, _FramePredictionCollector())
        if comm.is_main_process():
            videos = DatasetCatalog.get(dataset_name)
            predictions, ground_truths = align_with_videos(frame_predictions, videos, dataset_name)
            videos_by_dataset[dataset_name] = videos
            mined_by_dataset[dataset_name] = mine_false_positive_frames(
                predictions, ground_truths, cfg.DATALOADER.FP_MINING_RECALL, cfg.DATASETS.SAMPLE_FP_BY_VIDEO
            )
    if comm.is_main_process():
        write_hard_negative_json(output_path, mined_by_dataset, videos_by_dataset)
        counts = {name: sum(len(f) for f in mined.values()) for name, mined in mined_by_dataset.items()}
        logger.info(f"Hard-negative mining: false-positive frames {counts} written to {output_path}")
    comm.synchronize()
    return output_path
