"""XYXY box geometry on raw tensors: the one implementation of box area, IoU, GIoU and clipping.

Everything in usvid that compares or clips boxes calls these functions: ``Boxes`` and
``pairwise_iou`` (this package), NMS and the ``usvid.layers`` ops (re-exported there, with
torchvision's names), the RoI targets, the FCOS post-processing and the video metrics (whose
NumPy float64 arrays are viewed as tensors, so metric and model agree to the last bit). They
take plain ``Tensor[..., 4]`` rather than ``Boxes`` because losses, matchers and NMS work on raw
tensors inside the model.

The rule for empty and degenerate boxes (docs/en/metrics.md uses the same): IoU is
``intersection / union`` with areas ``(x2 - x1) * (y2 - y1)`` (no +1) and each side of the
intersection clipped at 0, and **a pair whose intersection is not positive has IoU 0**. That
covers boxes that do not touch, zero-area boxes (where torchvision's 0 / 0 gives NaN), boxes
with x2 < x1 or y2 < y1 (their intersection with anything is 0) and boxes with NaN coordinates
(the metrics' padding). A positive intersection implies two boxes of positive area and a
positive union, so no other pair needs a rule. The zero is a constant, not 0 / 0, so the
gradient of a degenerate pair is 0 rather than NaN.
"""

from typing import Tuple

import torch

__all__ = ["box_area", "box_iou", "matched_box_iou", "generalized_box_iou", "clip_boxes"]


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of each ``(x1, y1, x2, y2)`` box: ``Tensor[..., 4] -> Tensor[...]``; negative widths
    or heights are not clamped (as in detectron2's ``Boxes.area``)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _extent(low1: torch.Tensor, high1: torch.Tensor, low2: torch.Tensor, high2: torch.Tensor, enclosing: bool):
    """Length along one axis of each pair's overlap (or enclosing) interval, clipped at 0.

    In-place updates of the fresh broadcast temporaries halve the time of a naive ``[N, M, 2]``
    broadcast (NMS calls this on every frame); each in-place step is one autograd supports, so
    gradients still flow. NaN coordinates stay NaN (``clamp`` propagates them).
    """
    if enclosing:
        extent = torch.maximum(high1, high2).sub_(torch.minimum(low1, low2))
    else:
        extent = torch.minimum(high1, high2).sub_(torch.maximum(low1, low2))
    return extent.clamp_(min=0)


def _area_of_pairs(boxes1: torch.Tensor, boxes2: torch.Tensor, enclosing: bool) -> torch.Tensor:
    x1a, y1a, x2a, y2a = boxes1.unbind(dim=-1)
    x1b, y1b, x2b, y2b = boxes2.unbind(dim=-1)
    return _extent(x1a, x2a, x1b, x2b, enclosing) * _extent(y1a, y2a, y1b, y2b, enclosing)


def _intersection_and_union(boxes1: torch.Tensor, boxes2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    intersection = _area_of_pairs(boxes1, boxes2, enclosing=False)
    union = (box_area(boxes1) + box_area(boxes2)).sub_(intersection)
    return intersection, union


def _ratio_or_zero(numerator: torch.Tensor, denominator: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` where ``defined``, else 0, without 0 / 0 in either direction."""
    safe = torch.where(defined, denominator, torch.ones((), dtype=denominator.dtype, device=denominator.device))
    return torch.where(defined, numerator / safe, torch.zeros((), dtype=numerator.dtype, device=numerator.device))


def matched_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of corresponding boxes: ``Tensor[..., 4]`` arrays that broadcast against each other
    (``[P, 4]`` and ``[P, 4]`` give ``[P]``); the module docstring gives the rule for empty and
    degenerate boxes."""
    intersection, union = _intersection_and_union(boxes1, boxes2)
    return _ratio_or_zero(intersection, union, intersection > 0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise IoU (rule in the module doc)."""
    return matched_box_iou(boxes1[:, None, :], boxes2[None, :, :])


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4], Tensor[M, 4] -> Tensor[N, M]`` of pairwise generalized IoU: the IoU minus
    the fraction of the smallest enclosing box not covered by the union (0 when the enclosing box
    has no area, i.e. both boxes are the same point or segment)."""
    pairs1, pairs2 = boxes1[:, None, :], boxes2[None, :, :]
    intersection, union = _intersection_and_union(pairs1, pairs2)
    enclosing = _area_of_pairs(pairs1, pairs2, enclosing=True)
    iou = _ratio_or_zero(intersection, union, intersection > 0)
    return iou - _ratio_or_zero(enclosing - union, enclosing, enclosing > 0)


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``Tensor[N, 4]`` XYXY boxes clipped to an image of ``height`` x ``width`` (out of place;
    NaN coordinates stay NaN, ``Boxes.clip`` refuses them)."""
    return torch.stack(
        (
            boxes[:, 0].clamp(0, width),
            boxes[:, 1].clamp(0, height),
            boxes[:, 2].clamp(0, width),
            boxes[:, 3].clamp(0, height),
        ),
        dim=1,
    )
