"""``UltraDet``: the temporal lesion detector (Yu et al., MICCAI 2023, "Mining Negative
Temporal Contexts For False Positive Suppression In Real-Time Ultrasound Lesion Detection").

res4 features (optionally through a ConvLSTM over time) -> FCOS proposals (a fixed number per
frame) -> RoI features -> NTCA + causal relation layers over the buffered frames -> lesion score
and refined box. The proposals and the RoI features each read res4 or the stride-8 P3 map
(``MODEL.FCOS.IN_FEATURE``, ``MODEL.ROI_BOX_HEAD.IN_FEATURE``). Training runs on clips;
inference streams one frame per call with a buffer of the previous frames (kept by the RoI head:
``MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES`` of them, ``CONTEXT_FRAME_STEP`` frames apart), and
``inference_clip`` runs a clip in one go. Both compute the same function (checked by
tests/modeling).
"""

from typing import Dict, List, Optional, Tuple

import torch

from usvid.layers import ConvLSTMCell

from ..backbone import build_backbone, build_top_down, check_feature_level, level_stride
from ..dense_heads import FCOSPredictions, build_dense_head
from ..roi_heads import build_roi_heads, proposal_recall
from ..training_stats import put_training_scalars
from .base import VideoDetector
from .build import META_ARCH_REGISTRY


def check_clip_spacing(cfg) -> None:
    """Training clips must be spaced as the head's context frames: a head trained on clips of
    consecutive frames but streaming with context frames S apart (or the reverse) sees motion
    at a speed it never learned. Raises naming both keys."""
    clip_step = cfg.INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP
    context_step = cfg.MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP
    if clip_step != context_step:
        raise ValueError(
            f"INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP ({clip_step}) must equal MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP "
            f"({context_step}): UltraDet trains on clips spaced as the context frames it streams with"
        )


@META_ARCH_REGISTRY.register()
class UltraDet(VideoDetector):
    """The temporal lesion detector: backbone (+ ConvLSTM), the dense head as proposal generator
    (``proposal_generator``) and the temporal RoI head (``roi_heads``, MODEL.ROI_HEADS.NAME),
    which owns the frame buffer, the training targets and losses, and the final detections.
    This class runs the stages in order and keeps the per-video state of the backbone side
    (ConvLSTM state, frame size)."""

    def __init__(self, cfg):
        super().__init__(cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE)
        check_clip_spacing(cfg)
        self.backbone = build_backbone(cfg)
        channels = self.backbone.output_channels("res4")  # the width of every feature level
        self.lstm = ConvLSTMCell(channels, channels, 3) if cfg.MODEL.USE_LSTM else None
        self.proposal_feature = check_feature_level(cfg.MODEL.FCOS.IN_FEATURE, "MODEL.FCOS.IN_FEATURE")
        self.roi_feature = check_feature_level(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURE, "MODEL.ROI_BOX_HEAD.IN_FEATURE")
        self.top_down = build_top_down(self.backbone, self.proposal_feature, self.roi_feature)
        self.proposal_generator = build_dense_head(cfg, channels, level_stride(self.backbone, self.proposal_feature))
        self.roi_heads = build_roi_heads(
            cfg, channels, level_stride(self.backbone, self.roi_feature), self.backbone.res5_blocks
        )
        p = cfg.MODEL.PROPOSAL_GENERATOR
        self.num_proposals = p.NUM_PROPOSALS
        self.proposal_nms_thresh = p.NMS_THRESH
        self.proposal_pre_nms_topk = max(p.PRE_NMS_TOPK, p.NUM_PROPOSALS)
        self.reset()

    # ---- streaming state ------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new video: drop the RoI head's buffered frames and the ConvLSTM state."""
        self.roi_heads.reset()
        self._lstm_state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._stream_size: Optional[Tuple[int, int]] = None

    # ---- shared stages --------------------------------------------------------------------
    def _features(self, images: torch.Tensor, lstm_state=None):
        """Backbone features of frames [T, C, H, W] in time order, res4 through the ConvLSTM
        when enabled, plus the P3 map (built from that res4) when a head reads it."""
        features = self.backbone(images)
        if self.lstm is not None:
            res4, outputs = features["res4"], []
            for t in range(res4.shape[0]):
                lstm_state = self.lstm(res4[t : t + 1], lstm_state)
                outputs.append(lstm_state[0])
            features = {**features, "res4": torch.cat(outputs)}
        if self.top_down is not None:
            features["p3"] = self.top_down(features)
        return features, lstm_state

    def _proposals(self, features, image_size) -> Tuple[FCOSPredictions, torch.Tensor, torch.Tensor]:
        """Dense-head predictions, a fixed number of candidate boxes per frame [T, K, 4] and their
        proposal scores [T, K] (no grad: the RoI head's loss must not move the proposal
        generator through the box positions)."""
        predictions = self.proposal_generator(features[self.proposal_feature])
        with torch.no_grad():
            selected = self.proposal_generator.top_boxes(
                predictions,
                image_size,
                self.num_proposals,
                self.proposal_nms_thresh,
                self.proposal_pre_nms_topk,
                pad_to_num_boxes=True,
            )
        return predictions, torch.stack([boxes for boxes, _ in selected]), torch.stack([s for _, s in selected])

    # ---- entry points ---------------------------------------------------------------------
    def forward(self, batched_inputs):
        """Training: a list of clips -> loss dict. Inference: a list of frame dicts, taken as the
        next consecutive frames of the current video -> one ``{"instances"}`` dict per frame."""
        if self.training:
            return self.forward_training(self.check_training_input(batched_inputs))
        return [self.inference_frame(frame) for frame in batched_inputs]

    def inference_frame(self, frame: Dict) -> Dict:
        """Streaming inference on the next frame of the current video (call reset() between
        videos)."""
        image = self.normalize_frames([frame])
        image_size = tuple(image.shape[-2:])
        if self._stream_size is not None and image_size != self._stream_size:
            raise ValueError(
                f"frame size changed from {self._stream_size} to {image_size} within a video; "
                "call model.reset() at the start of each video"
            )
        self._stream_size = image_size
        features, self._lstm_state = self._features(image, self._lstm_state)
        _, candidates, proposal_scores = self._proposals(features, image_size)
        logits, deltas = self.roi_heads.forward_frame(features[self.roi_feature], candidates[0])
        boxes, scores = self.roi_heads.inference(logits, deltas, candidates[0], proposal_scores[0], image_size)
        return self.to_original_size(frame, image_size, boxes, scores)

    def inference_clip(self, frames: List[Dict]) -> List[Dict]:
        """The frames of one video from its start, in one batched pass; the same results as
        ``reset()`` then streaming the frames one by one. Leaves the streaming state alone."""
        images = self.normalize_frames(frames)
        image_size = tuple(images.shape[-2:])
        features, _ = self._features(images)
        _, candidates, proposal_scores = self._proposals(features, image_size)
        logits, deltas = self.roi_heads.forward_clip(features[self.roi_feature], candidates)
        results = []
        for t, frame in enumerate(frames):
            boxes, scores = self.roi_heads.inference(
                logits[t], deltas[t], candidates[t], proposal_scores[t], image_size
            )
            results.append(self.to_original_size(frame, image_size, boxes, scores))
        return results

    def forward_training(self, clips: List[List[Dict]]) -> Dict[str, torch.Tensor]:
        """Losses of a batch of clips: the dense head's (``loss_fcos_*``) on every frame, and the
        RoI head's (``loss_cls``, ``loss_box_reg``) on the proposals plus GT boxes."""
        self.roi_heads.check_clip_length(max(len(clip) for clip in clips))
        proposal_predictions, proposal_gt, head_outputs = [], [], []
        recall_hits = recall_total = 0
        for clip in clips:
            images = self.normalize_frames(clip)
            image_size = tuple(images.shape[-2:])
            gt_boxes = self.gt_boxes_of(clip)
            features, _ = self._features(images)
            predictions, proposals, _ = self._proposals(features, image_size)
            hits, total = proposal_recall(proposals, gt_boxes, self.roi_heads.iou_threshold)
            recall_hits, recall_total = recall_hits + hits, recall_total + total
            candidates = self.roi_heads.add_ground_truth(proposals, gt_boxes, image_size)
            logits, deltas = self.roi_heads.forward_clip(
                features[self.roi_feature], candidates, frame_spacing=self.roi_heads.context_frame_step
            )
            proposal_predictions.append(predictions)
            proposal_gt.append(gt_boxes)
            head_outputs.append((logits, deltas, candidates, gt_boxes))
        losses, fcos_stats = self.proposal_generator.losses(proposal_predictions, proposal_gt, prefix="loss_fcos")
        head_losses, head_stats = self.roi_heads.losses(head_outputs)
        losses.update(head_losses)
        stats = {"fcos_num_pos_per_frame": fcos_stats["num_pos_per_frame"], **head_stats}
        if recall_total:
            stats["proposal_recall"] = recall_hits / recall_total
        put_training_scalars("ultradet", **stats)
        return losses
