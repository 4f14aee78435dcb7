"""Detection losses with fvcore/detectron2 semantics (focal, GIoU, smooth-L1)."""

import torch
import torch.nn.functional as F

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: torch.Tensor, reduction: str, loss_name: str) -> torch.Tensor:
    """Apply ``reduction``; "mean" of an empty loss is 0 (still attached to the graph) rather
    than NaN, because frames without any positive box are common in lesion videos."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    raise ValueError(f"{loss_name}: reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def sigmoid_focal_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Focal loss (Lin et al., RetinaNet) on logits: binary cross-entropy scaled by
    ``(1 - p_t) ** gamma`` so that the many easy negatives of dense detection do not dominate.

    Args:
        inputs: logits of any shape; targets: same shape, 0/1 (or soft) labels.
        alpha: weight of positives in [0, 1] (negatives get ``1 - alpha``); < 0 disables it.
        gamma: focusing exponent; 0 gives (alpha-weighted) binary cross-entropy.
    """
    probabilities = torch.sigmoid(inputs)
    cross_entropy = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = probabilities * targets + (1 - probabilities) * (1 - targets)
    loss = cross_entropy * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return _reduce(loss, reduction, "sigmoid_focal_loss")


def giou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """``1 - GIoU`` between matched ``(x1, y1, x2, y2)`` boxes ``boxes1[i]`` and ``boxes2[i]``.

    Unlike IoU, GIoU still has a gradient when the boxes do not overlap. ``eps`` keeps the
    ratios finite for zero-area boxes.
    """
    if boxes1.shape != boxes2.shape or boxes1.shape[-1:] != (4,):
        raise ValueError(
            f"giou_loss: boxes1 and boxes2 must be matching Tensor[..., 4]; got "
            f"{tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    if (x2 < x1).any() or (y2 < y1).any():
        raise ValueError("giou_loss: boxes1 has a box with x2 < x1 or y2 < y1 (expected XYXY)")

    inter_w = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0)
    inter_h = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    intersection = inter_w * inter_h
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intersection
    iou = intersection / (union + eps)
    enclosing = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    giou = iou - (enclosing - union) / (enclosing + eps)
    return _reduce(1 - giou, reduction, "giou_loss")


def smooth_l1_loss(input: torch.Tensor, target: torch.Tensor, beta: float, reduction: str = "none") -> torch.Tensor:
    """Smooth-L1 (Huber / beta): ``0.5 * x**2 / beta`` for ``|x| < beta`` else ``|x| - 0.5 * beta``.

    ``beta < 1e-5`` is plain L1 (the quadratic branch would divide by ~0).
    """
    difference = torch.abs(input - target)
    if beta < 1e-5:
        loss = difference
    else:
        loss = torch.where(difference < beta, 0.5 * difference**2 / beta, difference - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")
