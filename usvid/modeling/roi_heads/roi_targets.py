"""Training targets of the RoI head: which candidates are lesions (and of which GT box), the GT
boxes (and jittered copies) put among the candidates, and the proposals' recall."""

from typing import List, Tuple

import torch

from usvid.structures import Boxes, pairwise_iou
from usvid.structures.box_ops import clip_boxes


def label_candidates(
    candidates: torch.Tensor, gt: torch.Tensor, iou_threshold: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Labels [K] (0 = lesion: IoU >= ``iou_threshold`` with a GT box, 1 = background) and the
    matched GT box [K, 4] of each candidate of one frame (the candidate itself without GT)."""
    if not gt.numel():
        return torch.ones(len(candidates), dtype=torch.long, device=candidates.device), candidates
    best_iou, best_gt = pairwise_iou(Boxes(candidates), Boxes(gt)).max(dim=1)
    return torch.where(best_iou >= iou_threshold, 0, 1), gt[best_gt]


def proposal_recall(proposals: torch.Tensor, gt_boxes: List[torch.Tensor], iou_threshold: float) -> Tuple[int, int]:
    """(GT boxes covered by a proposal with IoU >= threshold, GT boxes) over a clip."""
    hits = total = 0
    for frame_proposals, gt in zip(proposals, gt_boxes):
        if gt.numel():
            iou = pairwise_iou(Boxes(gt), Boxes(frame_proposals))
            hits += int((iou.max(dim=1).values >= iou_threshold).sum())
            total += len(gt)
    return hits, total


def replace_tail_with_gt(
    proposals: torch.Tensor, gt_boxes: List[torch.Tensor], num_jittered: int, image_size: Tuple[int, int]
) -> torch.Tensor:
    """Put each frame's GT boxes (then ``num_jittered`` jittered copies of each) in place of its
    lowest-ranked proposals [T, K, 4], so the RoI head sees positives from the first step while
    the candidate count stays fixed. At most half of the proposals are replaced."""
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


def jitter_boxes(
    boxes: torch.Tensor, copies: int, max_shift: float = 0.15, max_log_scale: float = 0.25
) -> torch.Tensor:
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
