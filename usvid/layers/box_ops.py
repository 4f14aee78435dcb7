"""Vectorised XYXY box geometry on raw tensors (torchvision.ops semantics).

These work on plain ``Tensor[N, 4]`` rather than ``Boxes`` because losses, matchers and NMS
operate on raw tensors inside the model; ``usvid.structures.pairwise_iou`` is the ``Boxes``
counterpart. Like torchvision, the IoU of two zero-area boxes is 0/0 = NaN here.
"""

from typing import Tuple

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of each ``(x1, y1, x2, y2)`` box: ``Tensor[N, 4] -> Tensor[N]``."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _intersection_and_union(
    boxes1: torch.Tensor, boxes2: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    width_height = (bottom_right - top_left).clamp(min=0)
    intersection = width_height[..., 0] * width_height[..., 1]
    union = area1[:, None] + area2[None, :] - intersection
    return intersection, union


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise IoU."""
    intersection, union = _intersection_and_union(boxes1, boxes2)
    return intersection / union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise generalized IoU
    (IoU minus the fraction of the smallest enclosing box not covered by the union)."""
    intersection, union = _intersection_and_union(boxes1, boxes2)
    iou = intersection / union
    enclosing_top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    enclosing_bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    enclosing_wh = (enclosing_bottom_right - enclosing_top_left).clamp(min=0)
    enclosing_area = enclosing_wh[..., 0] * enclosing_wh[..., 1]
    return iou - (enclosing_area - union) / enclosing_area
