"""``SingleFrameFCOS``: the single-frame baseline (ResNet + one-level dense head, FCOS by
default (``MODEL.DENSE_HEAD.NAME``), on res4 or P3 as ``MODEL.FCOS.IN_FEATURE`` says, like
UltraDet's proposals).

Each frame is detected on its own, so it fires on decoys that only a temporal model can
reject; it exists as the reference UltraDet is measured against. It keeps the video API
(clips in training, ``reset()`` + one frame per call in inference) so the same training flow
and evaluator drive both models.
"""

from typing import Dict, List

import torch

from ..backbone import build_backbone, build_top_down, check_feature_level, level_stride
from ..dense_heads import build_dense_head
from ..training_stats import put_training_scalars
from .base import VideoDetector
from .build import META_ARCH_REGISTRY


@META_ARCH_REGISTRY.register()
class SingleFrameFCOS(VideoDetector):
    """The single-frame baseline: every frame detected on its own by the dense head (``head``);
    the video API of VideoDetector, with nothing buffered between frames."""

    def __init__(self, cfg):
        super().__init__(cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.MODEL.FCOS.DETECTIONS_PER_IMAGE)
        self.backbone = build_backbone(cfg)
        self.in_feature = check_feature_level(cfg.MODEL.FCOS.IN_FEATURE, "MODEL.FCOS.IN_FEATURE")
        self.top_down = build_top_down(self.backbone, self.in_feature)
        self.head = build_dense_head(
            cfg, self.backbone.output_channels("res4"), level_stride(self.backbone, self.in_feature)
        )
        f = cfg.MODEL.FCOS
        self.score_thresh = f.SCORE_THRESH_TEST
        self.nms_thresh = f.NMS_THRESH_TEST
        self.pre_nms_topk = f.PRE_NMS_TOPK_TEST

    def forward(self, batched_inputs):
        """Training: a list of clips -> loss dict. Inference: a list of frame dicts (each detected
        on its own, sizes may differ) -> one ``{"instances"}`` dict per frame."""
        if self.training:
            return self.forward_training(self.check_training_input(batched_inputs))
        return [self.inference_clip([frame])[0] for frame in batched_inputs]

    def forward_training(self, clips: List[List[Dict]]) -> Dict[str, torch.Tensor]:
        predictions = [self._predict(self.normalize_frames(clip)) for clip in clips]
        gt_boxes = [self.gt_boxes_of(clip) for clip in clips]
        losses, stats = self.head.losses(predictions, gt_boxes, prefix="loss_fcos")
        put_training_scalars("fcos", **stats)
        return losses

    def _predict(self, images: torch.Tensor):
        return self.head(self._head_input(images))

    def _head_input(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)
        return features["res4"] if self.top_down is None else self.top_down(features)

    def inference_clip(self, frames: List[Dict]) -> List[Dict]:
        """Detections for frames of one size in one batch (no state: frames are independent)."""
        images = self.normalize_frames(frames)
        predictions = self._predict(images)
        image_size = tuple(images.shape[-2:])
        detections = self.head.top_boxes(
            predictions, image_size, self.max_detections, self.nms_thresh, self.pre_nms_topk, self.score_thresh
        )
        return [
            self.to_original_size(frame, image_size, boxes, scores)
            for frame, (boxes, scores) in zip(frames, detections)
        ]
