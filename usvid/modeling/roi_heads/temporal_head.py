"""UltraDet's RoI head: candidate features -> NTCA -> causal relation layers -> lesion /
background scores and box refinement, written once for a whole clip and once for one streamed
frame so that both compute the same function (frame t sees frames t - S, t - 2S, ..., t - WS,
W = ``MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES``, S = ``CONTEXT_FRAME_STEP``). The head owns
everything about that temporal context: the stream buffer and ``reset()``, the context index,
the training targets (GT boxes and jittered copies among the candidates) and the losses, and the
final per-frame detections."""

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from usvid.layers import nms, smooth_l1_loss
from usvid.structures.box_ops import clip_boxes

from ..box_regression import Box2BoxTransform
from .box_head import CandidatePooler, Res5BoxHead
from .build import ROI_HEADS_REGISTRY
from .relation import RelationLayer
from .roi_targets import label_candidates, replace_tail_with_gt
from .temporal_context import NegativeTemporalContextAggregation

logger = logging.getLogger(__name__)


@dataclass
class BufferedFrame:
    """What streaming keeps of a past frame: its NTCA context map and its candidates' boxes and
    per-layer relation inputs (the keys later frames attend to)."""

    context_map: Optional[torch.Tensor]  # [Cc, h, w], None without NTCA
    boxes: torch.Tensor  # [K, 4]
    relation_inputs: List[torch.Tensor] = field(default_factory=list)  # one [K, D] per layer


@dataclass(frozen=True)
class DetectionSelection:
    """Test time: which refined candidates of a frame are its detections (MODEL.ROI_HEADS.*)."""

    fuse_proposal_score: bool
    score_thresh: float
    nms_thresh: float
    detections_per_image: int

    def __call__(
        self, lesion_probs: torch.Tensor, proposal_scores: torch.Tensor, boxes: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Boxes [N, 4] and scores [N] kept of one frame's ``boxes`` [K, 4]: score above
        ``score_thresh``, NMS, the ``detections_per_image`` best. The score is the head's lesion
        probability, or with ``fuse_proposal_score`` its geometric mean with the candidate's
        proposal score (a second, single-frame opinion)."""
        scores = (lesion_probs * proposal_scores).sqrt() if self.fuse_proposal_score else lesion_probs
        keep = scores > self.score_thresh
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, self.nms_thresh)[: self.detections_per_image]
        return boxes[keep], scores[keep]


def context_index(positions: torch.Tensor, num_context_frames: int, step: int = 1) -> torch.Tensor:
    """[B, W] index of frame ``p - step * (1 + w)`` for each frame position p of ``positions`` [B]
    and offset w < W (-1 where that is before the first frame). The clip path asks for positions
    0..T-1 of the clip (``step``: clip frames between two context frames); the streaming path for
    the one position ``len(context)`` of the current frame after its context frames, step 1: the
    same rule, so both see the same context."""
    offsets = torch.arange(num_context_frames, device=positions.device)[None]
    index = positions[:, None] - step * (1 + offsets)
    return torch.where(index >= 0, index, torch.full_like(index, -1))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, focal_gamma: float) -> torch.Tensor:
    """Lesion / background loss of candidates (``logits`` [N, 2], ``labels`` [N], 0 = lesion):
    cross-entropy averaged over the candidates when ``focal_gamma`` is 0, else the focal loss
    ``-(1 - p_t) ** gamma * log(p_t)`` summed and divided by the number of lesion candidates, as
    RetinaNet normalises it (MODEL.ROI_HEADS.FOCAL_LOSS_GAMMA)."""
    if focal_gamma == 0:
        return F.cross_entropy(logits, labels)
    log_p_true = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    focal = -((1 - log_p_true.exp()) ** focal_gamma) * log_p_true
    return focal.sum() / max(int((labels == 0).sum()), 1)


@ROI_HEADS_REGISTRY.register()
class TemporalRoIHead(nn.Module):
    """UltraDet's temporal RoI head (NTCA + causal relation layers over the last
    ``num_context_frames`` frames); see the module docstring and ROI_HEADS_REGISTRY for its
    interface. Two classes, softmax: index 0 = lesion, index 1 = background."""

    def __init__(
        self,
        *,
        in_channels: int,
        stride: int,
        res5_blocks: int,
        norm: str,
        pooler_resolution: int,
        pooler_sampling_ratio: int,
        fc_dim: int,
        num_heads: int,
        num_relation_layers: int,
        use_ntca: bool,
        context_channels: int,
        context_pooler_resolution: int,
        num_context_frames: int,
        context_frame_step: int,
        bbox_reg_weights: Sequence[float],
        smooth_l1_beta: float,
        iou_threshold: float,
        proposal_append_gt: bool,
        num_jittered_gt: int,
        fuse_proposal_score: bool,
        focal_loss_gamma: float,
        score_thresh: float,
        nms_thresh: float,
        detections_per_image: int,
    ):
        super().__init__()
        if context_frame_step < 1:
            raise ValueError(f"MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP must be >= 1, got {context_frame_step}")
        self.num_context_frames = num_context_frames
        self.context_frame_step = context_frame_step
        self.pooler = CandidatePooler(stride, pooler_resolution, pooler_sampling_ratio)
        self.box_head = Res5BoxHead(in_channels, res5_blocks, norm, fc_dim)
        self.ntca = None
        if use_ntca:
            self.ntca = NegativeTemporalContextAggregation(
                in_channels, context_channels, context_pooler_resolution, fc_dim, num_heads, num_context_frames
            )
        self.relations = nn.ModuleList(RelationLayer(fc_dim, num_heads) for _ in range(num_relation_layers))
        self.cls_score = nn.Linear(fc_dim, 2)
        self.bbox_pred = nn.Linear(fc_dim, 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.zeros_(layer.bias)
        self.box2box = Box2BoxTransform(bbox_reg_weights)
        self.smooth_l1_beta = smooth_l1_beta
        self.iou_threshold = iou_threshold
        self.proposal_append_gt = proposal_append_gt
        self.num_jittered_gt = num_jittered_gt
        self.focal_loss_gamma = focal_loss_gamma
        self.selection = DetectionSelection(fuse_proposal_score, score_thresh, nms_thresh, detections_per_image)
        self._warned_short_clips = False
        self.reset()

    @classmethod
    def from_config(cls, cfg, in_channels: int, stride: int, res5_blocks: int) -> "TemporalRoIHead":
        """The head described by ``cfg.MODEL.ROI_BOX_HEAD`` and ``cfg.MODEL.ROI_HEADS``."""
        h, r = cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_HEADS
        return cls(
            in_channels=in_channels,
            stride=stride,
            res5_blocks=res5_blocks,
            norm=cfg.MODEL.RESNETS.NORM,
            pooler_resolution=h.POOLER_RESOLUTION,
            pooler_sampling_ratio=h.POOLER_SAMPLING_RATIO,
            fc_dim=h.FC_DIM,
            num_heads=h.NUM_HEADS,
            num_relation_layers=h.NUM_RELATION_LAYERS,
            use_ntca=h.USE_NTCA,
            context_channels=h.CONTEXT_CHANNELS,
            context_pooler_resolution=h.CONTEXT_POOLER_RESOLUTION,
            num_context_frames=h.NUM_CONTEXT_FRAMES,
            context_frame_step=h.CONTEXT_FRAME_STEP,
            bbox_reg_weights=h.BBOX_REG_WEIGHTS,
            smooth_l1_beta=h.SMOOTH_L1_BETA,
            iou_threshold=r.IOU_THRESHOLD,
            proposal_append_gt=r.PROPOSAL_APPEND_GT,
            num_jittered_gt=r.NUM_JITTERED_GT,
            fuse_proposal_score=r.FUSE_PROPOSAL_SCORE,
            focal_loss_gamma=r.FOCAL_LOSS_GAMMA,
            score_thresh=r.SCORE_THRESH_TEST,
            nms_thresh=r.NMS_THRESH_TEST,
            detections_per_image=r.DETECTIONS_PER_IMAGE,
        )

    # ---- streaming state ------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new video: forget the buffered frames (the last W * S are kept: the
        context frames of the next one and of those after it)."""
        self._buffer = deque(maxlen=max(self.num_context_frames * self.context_frame_step, 1))

    # ---- features -------------------------------------------------------------------------
    def _candidate_features(
        self, feature_maps: torch.Tensor, boxes: torch.Tensor, context_maps: Optional[torch.Tensor], index
    ) -> torch.Tensor:
        """Candidate features [B, K, D] of B frames (``feature_maps`` [B, C, h, w], ``boxes``
        [B, K, 4]) after NTCA over their context frames (``index`` [B, W] into
        ``context_maps``). The same code serves the clip and the streaming path."""
        num_frames, num_boxes, _ = boxes.shape
        channels = feature_maps.shape[1]
        if self.ntca is None:
            return self.box_head(self.pooler(feature_maps, boxes)).view(num_frames, num_boxes, -1)
        stacked = torch.cat((feature_maps, self.ntca.stack_context(context_maps, index)), dim=1)
        pooled = self.pooler(stacked, boxes)
        x = self.box_head(pooled[:, :channels]).view(num_frames, num_boxes, -1)
        return self.ntca(x, pooled[:, channels:], index)

    def forward_clip(
        self, feature_maps: torch.Tensor, boxes: torch.Tensor, frame_spacing: int = 1
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """All T frames of a clip at once. ``feature_maps`` [T, C, h, w], ``boxes`` [T, K, 4]
        -> class logits [T, K, 2] and box deltas [T, K, 4]. ``frame_spacing``: video frames
        between two clip frames (1: consecutive frames; training clips are sampled
        CONTEXT_FRAME_STEP apart). Leaves the stream state alone."""
        if self.context_frame_step % frame_spacing:
            raise ValueError(
                f"clip frames {frame_spacing} apart cannot hold context frames "
                f"MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP={self.context_frame_step} apart"
            )
        step = self.context_frame_step // frame_spacing  # in clip positions
        num_frames, num_boxes, _ = boxes.shape
        context_maps = None if self.ntca is None else self.ntca.context_maps(feature_maps)
        positions = torch.arange(num_frames, device=boxes.device)
        x = self._candidate_features(
            feature_maps, boxes, context_maps, context_index(positions, self.num_context_frames, step)
        )
        frame_of = positions.repeat_interleave(num_boxes)
        lag = frame_of[:, None] - frame_of[None, :]
        causal_mask = (lag >= 0) & (lag <= self.num_context_frames * step) & (lag % step == 0)
        x, flat_boxes = x.reshape(num_frames * num_boxes, -1), boxes.reshape(-1, 4)
        for layer in self.relations:
            x = layer(x, flat_boxes, x, flat_boxes, causal_mask)
        x = x.view(num_frames, num_boxes, -1)
        return self.cls_score(x), self.bbox_pred(x)

    def forward_frame(self, feature_map: torch.Tensor, boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The next streamed frame of the current video. ``feature_map`` [1, C, h, w], ``boxes``
        [K, 4] -> logits [K, 2] and deltas [K, 4]; the frame is then buffered for the next ones
        (``reset()`` between videos)."""
        buffer = self._context_frames()
        context_map, buffered_maps, index = None, None, None
        if self.ntca is not None:
            context_map = self.ntca.context_maps(feature_map)[0]
            buffered_maps = torch.stack([f.context_map for f in buffer] + [context_map])
            index = context_index(torch.tensor([len(buffer)], device=boxes.device), self.num_context_frames)
        x = self._candidate_features(feature_map, boxes[None], buffered_maps, index)[0]
        entry = BufferedFrame(context_map=context_map, boxes=boxes)
        key_boxes = torch.cat([f.boxes for f in buffer] + [boxes])
        for layer_index, layer in enumerate(self.relations):
            entry.relation_inputs.append(x)
            keys = torch.cat([f.relation_inputs[layer_index] for f in buffer] + [x])
            x = layer(x, boxes, keys, key_boxes, None)  # every buffered candidate is visible
        self._buffer.append(entry)
        return self.cls_score(x), self.bbox_pred(x)

    def _context_frames(self) -> List[BufferedFrame]:
        """The buffered frames the next frame sees, oldest first: S, 2S, ..., W * S frames back."""
        past, step = list(self._buffer), self.context_frame_step
        return [past[i] for i in range(len(past) - step, -1, -step)][: self.num_context_frames][::-1]

    # ---- training -------------------------------------------------------------------------
    def check_clip_length(self, longest: int) -> None:
        """Warn once when training clips (``longest`` frames at most) are too short to train
        every context offset that streaming uses."""
        if longest <= self.num_context_frames and not self._warned_short_clips:
            self._warned_short_clips = True
            logger.warning(
                f"Training clips have at most {longest} frames but MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES="
                f"{self.num_context_frames}: context offsets >= {longest} are never trained yet are used when "
                "streaming. Use INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES > NUM_CONTEXT_FRAMES."
            )

    def add_ground_truth(self, proposals: torch.Tensor, gt_boxes: List[torch.Tensor], image_size) -> torch.Tensor:
        """Training candidates [T, K, 4] of a clip: the proposals with, when
        MODEL.ROI_HEADS.PROPOSAL_APPEND_GT, each frame's GT boxes (and NUM_JITTERED_GT jittered
        copies of each) in place of its lowest-ranked ones."""
        if not self.proposal_append_gt:
            return proposals
        return replace_tail_with_gt(proposals, gt_boxes, self.num_jittered_gt, image_size)

    def losses(self, clips: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]]):
        """Classification of all candidates (IoU >= MODEL.ROI_HEADS.IOU_THRESHOLD with a GT box
        = lesion; see ``classification_loss``) and smooth-L1 box refinement of the positives,
        normalised by the number of candidates (detectron2's fast R-CNN losses). ``clips``: per clip (logits [T, K, 2],
        deltas [T, K, 4], candidates [T, K, 4], GT boxes per frame). Returns the loss dict and
        statistics for the event storage."""
        logits = torch.cat([clip_logits.reshape(-1, 2) for clip_logits, _, _, _ in clips])
        deltas = torch.cat([clip_deltas.reshape(-1, 4) for _, clip_deltas, _, _ in clips])
        candidates = torch.cat([clip_candidates.reshape(-1, 4) for _, _, clip_candidates, _ in clips])
        frames = [(c[t], gt[t]) for _, _, c, gt in clips for t in range(len(gt))]
        labelled = [label_candidates(frame_candidates, gt, self.iou_threshold) for frame_candidates, gt in frames]
        labels = torch.cat([frame_labels for frame_labels, _ in labelled])
        targets = torch.cat([frame_targets for _, frame_targets in labelled])
        is_pos = labels == 0
        loss_cls = classification_loss(logits, labels, self.focal_loss_gamma)
        target_deltas = self.box2box.get_deltas(candidates[is_pos], targets[is_pos])
        loss_box = smooth_l1_loss(deltas[is_pos], target_deltas, self.smooth_l1_beta, reduction="sum") / max(
            len(labels), 1
        )
        predicted = logits.argmax(dim=1)
        stats = {
            "num_pos_per_frame": int(is_pos.sum()) / max(len(frames), 1),
            "cls_accuracy": float((predicted == labels).float().mean()),
        }
        if is_pos.any():
            stats["fg_cls_accuracy"] = float((predicted[is_pos] == 0).float().mean())
        return {"loss_cls": loss_cls, "loss_box_reg": loss_box}, stats

    # ---- inference ------------------------------------------------------------------------
    def inference(self, logits, deltas, candidates, proposal_scores, image_size) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final boxes [N, 4] and scores [N] of one frame: its candidates refined by ``deltas`` and
        clipped to the image, as ``self.selection`` (score threshold, NMS, top-k) keeps them."""
        boxes = clip_boxes(self.box2box.apply_deltas(deltas, candidates), *image_size)
        return self.selection(F.softmax(logits, dim=-1)[:, 0], proposal_scores, boxes)
