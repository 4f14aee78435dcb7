"""Hard-negative mining: find the training frames where the current model raises false alarms,
and make the train loader show them more often.

False positives in ultrasound come from a few structures (fat lobules, vessels, acoustic shadows)
that look like a lesion in some frames. The miner runs the model over the training videos with
the same streaming inference as the evaluation, keeps the boxes above the operating threshold
(the score at which the model reaches DATALOADER.FP_MINING_RECALL: FP80's threshold for 0.8),
links them into sequences exactly as the FP metric does
(``VideoDetectionEvaluation.fp_sequence_frames``), and writes the frames that hold a
false-positive sequence in the JSON format that
``usvid.data.frame_sampler.load_hard_negative_frames`` reads::

    [{"dataset": "phantom_trainval", "frames": [{"video_id": 3, "frame_idx": 17}, ...]}, ...]

``RefreshDataloaderHook`` does this every DATALOADER.REFRESH_PERIOD iterations and rebuilds the
train loader with INPUT.TRAIN_FRAME_SAMPLER.NAME = "HardNegativeFrameSampler" on that file.
"""

import json
import logging
import math
import os
from typing import Callable, Dict, Hashable, List, Mapping, Sequence

import numpy as np

from ..data import DatasetCatalog, build_video_detection_test_loader
from ..engine import HookBase
from ..utils import comm
from ..utils.file_io import atomic_write
from .evaluator import DatasetEvaluator
from .inference import inference_on_video_dataset
from .predictions_io import align_with_videos, frame_prediction_from_instances
from .video_metrics import VideoDetectionEvaluation

__all__ = [
    "mine_false_positive_frames",
    "write_hard_negative_json",
    "RefreshDataloaderHook",
]

logger = logging.getLogger(__name__)

# Mined files go to OUTPUT_DIR/<this>/fp_<iteration>.json.
HARD_NEGATIVE_FOLDER = "hard_negatives"

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
            "Hard-negative mining: the detections never reach recall %.2f on these videos (or they "
            "hold no lesion), so there is no operating point to call false alarms at", recall
        )
    return {video_id: frames for video_id, frames in mined.items() if frames}


def write_hard_negative_json(
    path: str,
    mined_by_dataset: Mapping[str, Mapping[Hashable, List[int]]],
    videos_by_dataset: Mapping[str, Sequence[dict]],
) -> str:
    """Write the mined frames (positions per video, per dataset) in the frame sampler's format,
    translating positions into the videos' ``frame_idx`` values. Atomic, so a loader never reads
    a half-written file. Returns ``path``."""
    groups = []
    for dataset_name, mined in mined_by_dataset.items():
        videos = {video["video_id"]: video for video in videos_by_dataset[dataset_name]}
        frames = [
            {"video_id": video_id, "frame_idx": videos[video_id]["frames"][position]["frame_idx"]}
            for video_id in sorted(mined)
            for position in mined[video_id]
        ]
        groups.append({"dataset": dataset_name, "frames": frames})
    with atomic_write(path, "w") as f:
        json.dump(groups, f, indent=1)
    return path


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
        logger.info("Hard-negative mining: false-positive frames %s written to %s", counts, output_path)
    comm.synchronize()
    return output_path


def hard_negative_config(cfg, fp_json: str):
    """A copy of ``cfg`` whose train loader samples windows around the frames of ``fp_json``."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "HardNegativeFrameSampler"
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = fp_json
    cfg.freeze()
    return cfg


class RefreshDataloaderHook(HookBase):
    """Every DATALOADER.REFRESH_PERIOD iterations, mine the training videos' false-positive
    frames with the current model and rebuild the train loader to draw windows around them
    INPUT.TRAIN_FRAME_SAMPLER.FP_SAMPLE_RATE times as often.

    The new loader continues the old one's clip stream (same ``sampler`` object, so the
    checkpoint's sampler position stays valid). The state is the latest mined file, relative to
    OUTPUT_DIR (so a moved output folder still resumes): a resumed run rebuilds the loader from it
    before training continues.

    Args:
        cfg: the training config (OUTPUT_DIR, DATASETS.TRAIN, the mining keys).
        build_train_loader: ``cfg -> loader`` (e.g. ``Trainer.build_train_loader``).
    """

    # Before the default hooks (50), in particular PeriodicCheckpointer: a checkpoint written at
    # a mining iteration must already record the new file, or a resume from it would diverge.
    priority = 40

    def __init__(self, cfg, build_train_loader: Callable):
        if cfg.DATALOADER.REFRESH_PERIOD <= 0:
            raise ValueError(f"DATALOADER.REFRESH_PERIOD must be > 0 for this hook, got {cfg.DATALOADER.REFRESH_PERIOD}")
        self.cfg = cfg
        self.period = cfg.DATALOADER.REFRESH_PERIOD
        self._build_train_loader = build_train_loader
        self.latest_fp_json = ""
        self._installed_fp_json = ""

    def before_train(self):
        # After a resume, the loader built by the trainer does not know the mined file yet.
        if self.latest_fp_json and self.latest_fp_json != self._installed_fp_json:
            self._install_loader(self.latest_fp_json)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self.period != 0 or next_iter >= self.trainer.max_iter:
            return
        model = self.trainer.model
        model = comm.unwrap_model(model)
        file_name = os.path.join(HARD_NEGATIVE_FOLDER, f"fp_{self.trainer.iter:07d}.json")
        mine_hard_negatives(model, self.cfg, os.path.join(self.cfg.OUTPUT_DIR, file_name))
        self.latest_fp_json = file_name
        self._install_loader(file_name)

    def _install_loader(self, fp_json: str) -> None:
        sampler = self.trainer.data_loader.sampler

        def build_loader():
            loader = self._build_train_loader(hard_negative_config(self.cfg, os.path.join(self.cfg.OUTPUT_DIR, fp_json)))
            loader.sampler = sampler  # continue the same (checkpointed) clip stream
            return loader

        self.trainer.reset_data_loader(build_loader)
        self._installed_fp_json = fp_json

    def state_dict(self):
        return {"latest_fp_json": self.latest_fp_json}

    def load_state_dict(self, state):
        self.latest_fp_json = state["latest_fp_json"]
