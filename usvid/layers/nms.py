"""Non-maximum suppression with torchvision's semantics, in pure PyTorch.

``nms`` dispatches to torchvision's fused kernel where torchvision imports (GPU machines) and
otherwise runs ``nms_pure``: a vectorised IoU test followed by a greedy pass over a CPU bool
matrix, which is fast for the few hundred candidates per frame that the detectors produce.
"""

import numpy as np
import torch

from usvid.structures.box_ops import box_iou

from .optional_torchvision import prefer_torchvision

# Rows of the IoU matrix computed at once: bounds peak memory to ~block * N floats.
_IOU_ROW_BLOCK = 1024


def _check_nms_inputs(boxes: torch.Tensor, scores: torch.Tensor) -> None:
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"nms: boxes must be a Tensor[N, 4] (x1, y1, x2, y2); got {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"nms: scores must be a Tensor[N] matching boxes' N={boxes.shape[0]}; got {tuple(scores.shape)}"
        )


def nms_pure(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS over ``(x1, y1, x2, y2)`` boxes, as ``torchvision.ops.nms`` (``nms`` runs
    torchvision's kernel instead where torchvision imports).

    Boxes are visited in decreasing score (equal scores in input order); a box is discarded
    when its IoU with an already kept box is strictly greater than ``iou_threshold``.
    Returns the int64 indices of the kept boxes, sorted by decreasing score.
    """
    _check_nms_inputs(boxes, scores)
    num_boxes = boxes.shape[0]
    if num_boxes == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # A stable sort makes equal scores keep their input order, as torchvision's kernel does.
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    overlaps = np.empty((num_boxes, num_boxes), dtype=bool)
    for start in range(0, num_boxes, _IOU_ROW_BLOCK):
        rows = box_iou(sorted_boxes[start : start + _IOU_ROW_BLOCK], sorted_boxes)
        # Empty or degenerate boxes have IoU 0 with everything: they never suppress (threshold >= 0).
        overlaps[start : start + _IOU_ROW_BLOCK] = (rows > iou_threshold).cpu().numpy()
    suppressed = np.zeros(num_boxes, dtype=bool)
    kept = []
    for i in range(num_boxes):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= overlaps[i]
    return order[torch.as_tensor(kept, dtype=torch.int64, device=boxes.device)]


nms = prefer_torchvision("nms", nms_pure)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS applied independently per category ``idxs`` (boxes of different categories never
    suppress each other). Returns kept indices sorted by decreasing score.

    One NMS call suffices: each category is translated by a multiple of the coordinate span
    so categories cannot overlap. Unlike torchvision's offset (max coordinate + 1), the span
    ``max - min + 1`` also separates categories when coordinates are negative.
    """
    _check_nms_inputs(boxes, scores)
    if idxs.shape != scores.shape:
        raise ValueError(
            f"batched_nms: idxs must be a Tensor[N] like scores {tuple(scores.shape)}; got {tuple(idxs.shape)}"
        )
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    offsets = idxs.to(boxes) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)
