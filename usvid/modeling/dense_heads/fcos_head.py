"""An FCOS head on one feature level: the single-frame detector's whole head, and UltraDet's
proposal generator (the same module, so both models share one implementation; both name it
with ``MODEL.DENSE_HEAD.NAME``).

Predictions per location: a lesion logit (sigmoid focal loss), distances l/t/r/b to the box
sides (GIoU loss on the decoded box) and a centre-ness logit (BCE). The detection score is
``sqrt(sigmoid(cls) * sigmoid(ctr))`` as in FCOS, which down-weights off-centre locations.
"""

import math
from typing import Dict, List, NamedTuple, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from usvid.layers import get_norm, giou_loss, nms, sigmoid_focal_loss
from usvid.structures.box_ops import clip_boxes

from .build import DENSE_HEAD_REGISTRY
from .fcos_targets import assign_targets_per_frame, grid_locations

# exp() of the regression logit is clamped here (ltrb <= stride * e^8), so an early bad step
# cannot overflow to inf.
_MAX_LOG_LTRB = 8.0


class FCOSPredictions(NamedTuple):
    """Raw head outputs for F frames of one size, flattened over locations."""

    cls_logits: torch.Tensor  # [F, L]
    ltrb: torch.Tensor  # [F, L, 4] distances in pixels
    ctr_logits: torch.Tensor  # [F, L]
    locations: torch.Tensor  # [L, 2] (x, y) image coordinates


@DENSE_HEAD_REGISTRY.register()
class FCOSHead(nn.Module):
    """Conv tower + the three FCOS predictors on a stride-``stride`` feature map."""

    def __init__(
        self,
        in_channels: int,
        stride: int,
        conv_channels: int,
        num_convs: int,
        norm: str,
        prior_prob: float,
        focal_alpha: float,
        focal_gamma: float,
        center_sampling_radius: float,
    ):
        super().__init__()
        self.stride = stride
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.center_sampling_radius = center_sampling_radius
        tower = []
        channels = in_channels
        for _ in range(num_convs):
            tower.append(nn.Conv2d(channels, conv_channels, 3, padding=1, bias=not norm))
            norm_layer = get_norm(norm, conv_channels)
            if norm_layer is not None:
                tower.append(norm_layer)
            tower.append(nn.ReLU(inplace=True))
            channels = conv_channels
        self.tower = nn.Sequential(*tower)
        self.cls_logits = nn.Conv2d(channels, 1, 3, padding=1)
        self.bbox_pred = nn.Conv2d(channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # Focal-loss prior: start predicting ``prior_prob`` everywhere so the many background
        # locations do not swamp the first iterations.
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    @classmethod
    def from_config(cls, cfg, in_channels: int, stride: int) -> "FCOSHead":
        """The head described by ``cfg.MODEL.FCOS`` on a stride-``stride`` map."""
        f = cfg.MODEL.FCOS
        return cls(
            in_channels=in_channels,
            stride=stride,
            conv_channels=f.CONV_CHANNELS,
            num_convs=f.NUM_CONVS,
            norm=f.NORM,
            prior_prob=f.PRIOR_PROB,
            focal_alpha=f.FOCAL_LOSS_ALPHA,
            focal_gamma=f.FOCAL_LOSS_GAMMA,
            center_sampling_radius=f.CENTER_SAMPLING_RADIUS,
        )

    def forward(self, features: torch.Tensor) -> FCOSPredictions:
        """``features`` [F, C, h, w] -> FCOSPredictions over the h*w locations."""
        num_frames, _, height, width = features.shape
        x = self.tower(features)
        cls_logits = self.cls_logits(x).reshape(num_frames, -1)
        log_ltrb = self.bbox_pred(x).permute(0, 2, 3, 1).reshape(num_frames, -1, 4)
        ltrb = torch.exp(log_ltrb.clamp(max=_MAX_LOG_LTRB)) * self.stride
        ctr_logits = self.centerness(x).reshape(num_frames, -1)
        locations = grid_locations(height, width, self.stride, features.device)
        return FCOSPredictions(cls_logits, ltrb, ctr_logits, locations)

    def decode_boxes(self, predictions: FCOSPredictions) -> torch.Tensor:
        """Boxes [F, L, 4] (XYXY image pixels) from the predicted distances."""
        xy = predictions.locations[None]
        return torch.cat((xy - predictions.ltrb[..., :2], xy + predictions.ltrb[..., 2:]), dim=-1)

    def scores(self, predictions: FCOSPredictions) -> torch.Tensor:
        """Per-location detection scores [F, L] in [0, 1]."""
        return torch.sqrt(torch.sigmoid(predictions.cls_logits) * torch.sigmoid(predictions.ctr_logits))

    def losses(
        self, predictions: List[FCOSPredictions], gt_boxes: List[List[torch.Tensor]], prefix: str
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, float]]:
        """Losses over several groups of frames (one group per clip; groups may differ in size).

        ``gt_boxes[i][f]`` are the boxes [G, 4] of frame f of group i. Returns the loss dict
        (``{prefix}_cls``, ``{prefix}_loc``, ``{prefix}_ctr``; all normalised by the number of
        positive locations of the whole batch, at least 1) and statistics for the event storage.
        """
        cls_logits, boxes, ctr_logits, positives, target_boxes, target_ctr = [], [], [], [], [], []
        for preds, frame_boxes in zip(predictions, gt_boxes):
            is_pos, tgt_boxes, tgt_ctr = assign_targets_per_frame(
                preds.locations, frame_boxes, self.stride, self.center_sampling_radius
            )
            cls_logits.append(preds.cls_logits.reshape(-1))
            ctr_logits.append(preds.ctr_logits.reshape(-1))
            boxes.append(self.decode_boxes(preds).reshape(-1, 4))
            positives.append(is_pos)
            target_boxes.append(tgt_boxes)
            target_ctr.append(tgt_ctr)
        cls_logits, ctr_logits, boxes = torch.cat(cls_logits), torch.cat(ctr_logits), torch.cat(boxes)
        is_pos, target_boxes, target_ctr = torch.cat(positives), torch.cat(target_boxes), torch.cat(target_ctr)
        num_pos = int(is_pos.sum())
        normaliser = max(num_pos, 1)
        loss_cls = (
            sigmoid_focal_loss(
                cls_logits, is_pos.to(cls_logits.dtype), alpha=self.focal_alpha, gamma=self.focal_gamma, reduction="sum"
            )
            / normaliser
        )
        if num_pos > 0:
            ctr_target = target_ctr[is_pos]
            loss_ctr = F.binary_cross_entropy_with_logits(ctr_logits[is_pos], ctr_target, reduction="sum") / normaliser
            # Weighted by the centre-ness target (FCOS): off-centre locations regress worse boxes
            # and should not dominate; the +0.1 keeps every positive in the loss.
            weights = ctr_target + 0.1
            loss_loc = (
                giou_loss(boxes[is_pos], target_boxes[is_pos], reduction="none") * weights
            ).sum() / weights.sum()
        else:
            # Keep the graph connected (zero gradient) so DDP and the loss dict stay uniform.
            loss_ctr = ctr_logits.sum() * 0.0
            loss_loc = boxes.sum() * 0.0
        num_frames = sum(p.cls_logits.shape[0] for p in predictions)
        stats = {"num_pos_per_frame": num_pos / max(num_frames, 1)}
        return {f"{prefix}_cls": loss_cls, f"{prefix}_loc": loss_loc, f"{prefix}_ctr": loss_ctr}, stats

    def top_boxes(
        self,
        predictions: FCOSPredictions,
        image_size: Tuple[int, int],
        num_boxes: int,
        nms_thresh: float,
        pre_nms_topk: int,
        score_thresh: float = 0.0,
        pad_to_num_boxes: bool = False,
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Per frame: boxes [N, 4] and scores [N] after score threshold, top-k, clipping and NMS.

        With ``pad_to_num_boxes`` (UltraDet's proposals) exactly ``min(num_boxes, L)`` boxes come
        back: when NMS leaves fewer, the suppressed ones refill the list in score order, because
        the temporal head works on a fixed number of candidates per frame.
        """
        all_scores = self.scores(predictions)
        all_boxes = self.decode_boxes(predictions)
        height, width = image_size
        results = []
        for scores, boxes in zip(all_scores, all_boxes):
            keep = scores > score_thresh
            scores, boxes = scores[keep], boxes[keep]
            top = scores.topk(min(pre_nms_topk, scores.numel())).indices
            scores, boxes = scores[top], clip_boxes(boxes[top], height, width)
            kept = nms(boxes, scores, nms_thresh)
            if pad_to_num_boxes:
                suppressed = torch.ones(len(scores), dtype=torch.bool, device=scores.device)
                suppressed[kept] = False
                kept = torch.cat((kept, torch.nonzero(suppressed).flatten()))
            kept = kept[:num_boxes]
            results.append((boxes[kept], scores[kept]))
        return results
