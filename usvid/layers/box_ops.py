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


def _pairwise_extent(
    low1: torch.Tensor, high1: torch.Tensor, low2: torch.Tensor, high2: torch.Tensor, enclosing: bool
) -> torch.Tensor:
    """``[N, M]`` length along one axis of each pair's overlap (or enclosing) interval, >= 0.

    Per-coordinate columns and in-place updates of the fresh ``[N, M]`` temporaries halve the
    time of the naive ``[N, M, 2]`` broadcast (NMS calls this on every frame); each in-place
    step is one autograd supports, so gradients still flow.
    """
    if enclosing:
        extent = torch.max(high1[:, None], high2).sub_(torch.min(low1[:, None], low2))
    else:
        extent = torch.min(high1[:, None], high2).sub_(torch.max(low1[:, None], low2))
    return extent.clamp_(min=0)


def _pairwise_area(boxes1: torch.Tensor, boxes2: torch.Tensor, enclosing: bool) -> torch.Tensor:
    x1a, y1a, x2a, y2a = boxes1.unbind(dim=1)
    x1b, y1b, x2b, y2b = boxes2.unbind(dim=1)
    return _pairwise_extent(x1a, x2a, x1b, x2b, enclosing) * _pairwise_extent(y1a, y2a, y1b, y2b, enclosing)


def _intersection_and_union(
    boxes1: torch.Tensor, boxes2: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    intersection = _pairwise_area(boxes1, boxes2, enclosing=False)
    union = (box_area(boxes1)[:, None] + box_area(boxes2)).sub_(intersection)
    return intersection, union


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise IoU."""
    intersection, union = _intersection_and_union(boxes1, boxes2)
    return intersection / union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise generalized IoU
    (IoU minus the fraction of the smallest enclosing box not covered by the union)."""
    intersection, union = _intersection_and_union(boxes1, boxes2)
    enclosing_area = _pairwise_area(boxes1, boxes2, enclosing=True)
    return intersection / union - (enclosing_area - union) / enclosing_area
