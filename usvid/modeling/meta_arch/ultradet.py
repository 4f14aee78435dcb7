"""``UltraDet``: the temporal lesion detector (Yu et al., MICCAI 2023, "Mining Negative
Temporal Contexts For False Positive Suppression In Real-Time Ultrasound Lesion Detection").

res4 features (optionally through a ConvLSTM over time) -> FCOS proposals (a fixed number per
frame) -> RoI features -> NTCA + causal relation layers over the buffered frames -> lesion score
and refined box. The proposals and the RoI features each read res4 or the stride-8 P3 map
(``MODEL.FCOS.IN_FEATURE``, ``MODEL.ROI_BOX_HEAD.IN_FEATURE``). Training runs on clips;
inference streams one frame per call with a buffer of the previous
``MODEL.ROI_BOX_HEAD.INTERVAL_PRE_TEST`` frames, and ``inference_clip`` runs a clip in one go.
Both compute the same function (checked by tests/modeling).
"""

import logging
from collections import deque
from typing import Dict, List, Optional, Tuple

import torch
from torch.nn import functional as F

from usvid.layers import ConvLSTMCell, nms, smooth_l1_loss
from usvid.structures import Boxes, pairwise_iou

from ..backbone import build_backbone, build_top_down, check_feature_level, level_stride
from ..box_regression import Box2BoxTransform
from ..proposal_generator import FCOSHead, FCOSPredictions, clip_boxes
from ..roi_heads import TemporalRoIHead
from ..training_stats import put_training_scalars
from .base import VideoDetector
from .build import META_ARCH_REGISTRY

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class UltraDet(VideoDetector):
    def __init__(self, cfg):
        super().__init__(cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE)
        self.backbone = build_backbone(cfg)
        channels = self.backbone.output_channels("res4")  # the width of every feature level
        self.lstm = ConvLSTMCell(channels, channels, 3) if cfg.MODEL.USE_LSTM else None
        self.proposal_feature = check_feature_level(cfg.MODEL.FCOS.IN_FEATURE, "MODEL.FCOS.IN_FEATURE")
        self.roi_feature = check_feature_level(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURE, "MODEL.ROI_BOX_HEAD.IN_FEATURE")
        self.top_down = build_top_down(self.backbone, self.proposal_feature, self.roi_feature)
        self.proposal_generator = FCOSHead.from_config(
            cfg, channels, level_stride(self.backbone, self.proposal_feature)
        )
        self.roi_heads = TemporalRoIHead(
            cfg, channels, level_stride(self.backbone, self.roi_feature), self.backbone.res5_blocks
        )
        self.box2box = Box2BoxTransform(cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS)
        p, r = cfg.MODEL.PROPOSAL_GENERATOR, cfg.MODEL.ROI_HEADS
        self.num_proposals = p.NUM_PROPOSALS
        self.proposal_nms_thresh = p.NMS_THRESH
        self.proposal_pre_nms_topk = max(p.PRE_NMS_TOPK, p.NUM_PROPOSALS)
        self.iou_threshold = r.IOU_THRESHOLD
        self.append_gt = r.PROPOSAL_APPEND_GT
        self.num_jittered_gt = r.NUM_JITTERED_GT
        self.fuse_proposal_score = r.FUSE_PROPOSAL_SCORE
        self.score_thresh = r.SCORE_THRESH_TEST
        self.nms_thresh = r.NMS_THRESH_TEST
        self.smooth_l1_beta = cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA
        self._warned_short_clips = False
        self.reset()

    # ---- streaming state ------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new video: drop the buffered frames and the ConvLSTM state."""
        self._buffer = deque(maxlen=max(self.roi_heads.window, 1))
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
        """FCOS predictions, a fixed number of candidate boxes per frame [T, K, 4] and their
        proposal scores [T, K] (no grad: the RoI head's loss must not move the proposal
        generator through the box positions)."""
        predictions = self.proposal_generator(features[self.proposal_feature])
        with torch.no_grad():
            selected = self.proposal_generator.top_boxes(
                predictions, image_size, self.num_proposals, self.proposal_nms_thresh,
                self.proposal_pre_nms_topk, pad_to_num_boxes=True,
            )
        return predictions, torch.stack([boxes for boxes, _ in selected]), torch.stack([s for _, s in selected])

    def _detections(self, logits, deltas, candidates, proposal_scores, image_size):
        """Final boxes [N, 4] and scores [N] of one frame (score threshold, NMS, top-k). The score
        is the head's lesion probability, or with MODEL.ROI_HEADS.FUSE_PROPOSAL_SCORE its
        geometric mean with the candidate's proposal score (a second, single-frame opinion)."""
        scores = F.softmax(logits, dim=-1)[:, 0]
        if self.fuse_proposal_score:
            scores = (scores * proposal_scores).sqrt()
        boxes = clip_boxes(self.box2box.apply_deltas(deltas, candidates), *image_size)
        keep = scores > self.score_thresh
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, self.nms_thresh)[: self.max_detections]
        return boxes[keep], scores[keep]

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
        logits, deltas, entry = self.roi_heads.forward_frame(features[self.roi_feature], candidates[0], self._buffer)
        self._buffer.append(entry)
        boxes, scores = self._detections(logits, deltas, candidates[0], proposal_scores[0], image_size)
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
            boxes, scores = self._detections(logits[t], deltas[t], candidates[t], proposal_scores[t], image_size)
            results.append(self.to_original_size(frame, image_size, boxes, scores))
        return results

    def forward_training(self, clips: List[List[Dict]]) -> Dict[str, torch.Tensor]:
        self._warn_if_clips_are_shorter_than_the_window(clips)
        proposal_predictions, proposal_gt, logits, deltas, candidates, cand_gt = [], [], [], [], [], []
        recall_hits = recall_total = 0
        for clip in clips:
            images = self.normalize_frames(clip)
            image_size = tuple(images.shape[-2:])
            gt_boxes = self.gt_boxes_of(clip)
            features, _ = self._features(images)
            predictions, proposals, _ = self._proposals(features, image_size)
            hits, total = _proposal_recall(proposals, gt_boxes, self.iou_threshold)
            recall_hits, recall_total = recall_hits + hits, recall_total + total
            if self.append_gt:
                proposals = _replace_tail_with_gt(proposals, gt_boxes, self.num_jittered_gt, image_size)
            clip_logits, clip_deltas = self.roi_heads.forward_clip(features[self.roi_feature], proposals)
            proposal_predictions.append(predictions)
            proposal_gt.append(gt_boxes)
            logits.append(clip_logits.reshape(-1, 2))
            deltas.append(clip_deltas.reshape(-1, 4))
            candidates.append(proposals.reshape(-1, 4))
            cand_gt.extend((proposals[t], gt_boxes[t]) for t in range(len(clip)))
        losses, rpn_stats = self.proposal_generator.losses(proposal_predictions, proposal_gt, prefix="loss_rpn")
        head_losses, head_stats = self._roi_losses(torch.cat(logits), torch.cat(deltas), torch.cat(candidates), cand_gt)
        losses.update(head_losses)
        stats = {"rpn_num_pos_per_frame": rpn_stats["num_pos_per_frame"], **head_stats}
        if recall_total:
            stats["proposal_recall"] = recall_hits / recall_total
        put_training_scalars("ultradet", **stats)
        return losses

    def _warn_if_clips_are_shorter_than_the_window(self, clips: List[List[Dict]]) -> None:
        longest = max(len(clip) for clip in clips)
        if longest <= self.roi_heads.window and not self._warned_short_clips:
            self._warned_short_clips = True
            logger.warning(
                f"Training clips have at most {longest} frames but MODEL.ROI_BOX_HEAD.INTERVAL_PRE_TEST="
                f"{self.roi_heads.window}: context offsets >= {longest} are never trained yet are used when "
                "streaming. Use INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES > INTERVAL_PRE_TEST."
            )

    def _roi_losses(self, logits, deltas, candidates, cand_gt):
        """Cross-entropy over all candidates (IoU >= MODEL.ROI_HEADS.IOU_THRESHOLD with a GT box
        = lesion) and smooth-L1 box refinement of the positives, normalised by the number of
        candidates (detectron2's fast R-CNN losses)."""
        labels, targets = [], []
        for frame_candidates, gt in cand_gt:
            if gt.numel():
                iou = pairwise_iou(Boxes(frame_candidates), Boxes(gt))
                best_iou, best_gt = iou.max(dim=1)
                labels.append(torch.where(best_iou >= self.iou_threshold, 0, 1))
                targets.append(gt[best_gt])
            else:
                labels.append(torch.ones(len(frame_candidates), dtype=torch.long, device=frame_candidates.device))
                targets.append(frame_candidates)
        labels, targets = torch.cat(labels), torch.cat(targets)
        is_pos = labels == 0
        loss_cls = F.cross_entropy(logits, labels)
        target_deltas = self.box2box.get_deltas(candidates[is_pos], targets[is_pos])
        loss_box = smooth_l1_loss(deltas[is_pos], target_deltas, self.smooth_l1_beta, reduction="sum") / max(len(labels), 1)
        predicted = logits.argmax(dim=1)
        num_frames = len(cand_gt)
        stats = {
            "num_pos_per_frame": int(is_pos.sum()) / max(num_frames, 1),
            "cls_accuracy": float((predicted == labels).float().mean()),
        }
        if is_pos.any():
            stats["fg_cls_accuracy"] = float((predicted[is_pos] == 0).float().mean())
        return {"loss_cls": loss_cls, "loss_box_reg": loss_box}, stats


def _proposal_recall(proposals: torch.Tensor, gt_boxes: List[torch.Tensor], iou_threshold: float):
    """(GT boxes covered by a proposal with IoU >= threshold, GT boxes) over a clip."""
    hits = total = 0
    for frame_proposals, gt in zip(proposals, gt_boxes):
        if gt.numel():
            iou = pairwise_iou(Boxes(gt), Boxes(frame_proposals))
            hits += int((iou.max(dim=1).values >= iou_threshold).sum())
            total += len(gt)
    return hits, total


def _replace_tail_with_gt(
    proposals: torch.Tensor, gt_boxes: List[torch.Tensor], num_jittered: int, image_size: Tuple[int, int]
) -> torch.Tensor:
    """Training only: put each frame's GT boxes (then ``num_jittered`` jittered copies of each) in
    place of its lowest-ranked proposals, so the RoI head sees positives from the first step
    while the candidate count stays fixed. At most half of the proposals are replaced."""
    proposals = proposals.clone()
    num_boxes = proposals.shape[1]
    for t, gt in enumerate(gt_boxes):
        if not len(gt):
            continue
        boxes = gt
        if num_jittered:
            boxes = torch.cat((gt, clip_boxes(jitter_boxes(gt, num_jittered), *image_size)))
        n = min(len(boxes), max(num_boxes // 2, len(gt)), num_boxes)
        proposals[t, num_boxes - n :] = boxes[:n]
    return proposals


def jitter_boxes(boxes: torch.Tensor, copies: int, max_shift: float = 0.15, max_log_scale: float = 0.25) -> torch.Tensor:
    """``copies`` randomly perturbed versions of each box [G, 4] -> [copies * G, 4] (copy-major):
    the centre moves by up to ``max_shift`` of the box size, each side length is scaled by up to
    exp(+-``max_log_scale``). Most copies keep IoU >= 0.5 with their box (positives with
    something to refine); the others are negatives right next to a lesion."""
    boxes = boxes.repeat(copies, 1)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    noise = torch.rand(len(boxes), 4, device=boxes.device) * 2 - 1
    centre = centre + noise[:, :2] * max_shift * size
    size = size * torch.exp(noise[:, 2:] * max_log_scale)
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)
