"""Box <-> delta encoding of the RoI head's box refinement (detectron2's ``Box2BoxTransform``)."""

import math
from typing import Sequence

import torch

# Largest log-scale change applied to a box side, so a wild prediction cannot overflow exp().
_DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


class Box2BoxTransform:
    """``(dx, dy, dw, dh)`` deltas between XYXY boxes, scaled by ``weights`` (wx, wy, ww, wh)."""

    def __init__(self, weights: Sequence[float], scale_clamp: float = _DEFAULT_SCALE_CLAMP):
        if len(weights) != 4:
            raise ValueError(
                f"MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS needs 4 values (wx, wy, ww, wh), got {list(weights)}"
            )
        self.weights = tuple(float(w) for w in weights)
        self.scale_clamp = scale_clamp

    @staticmethod
    def _centre_size(boxes: torch.Tensor):
        widths = (boxes[..., 2] - boxes[..., 0]).clamp(min=1e-3)
        heights = (boxes[..., 3] - boxes[..., 1]).clamp(min=1e-3)
        return boxes[..., 0] + 0.5 * widths, boxes[..., 1] + 0.5 * heights, widths, heights

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """Deltas [..., 4] that turn ``src_boxes`` into ``target_boxes``."""
        wx, wy, ww, wh = self.weights
        sx, sy, sw, sh = self._centre_size(src_boxes)
        tx, ty, tw, th = self._centre_size(target_boxes)
        return torch.stack(
            (wx * (tx - sx) / sw, wy * (ty - sy) / sh, ww * torch.log(tw / sw), wh * torch.log(th / sh)), dim=-1
        )

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes [..., 4] obtained by applying ``deltas`` to ``boxes``."""
        wx, wy, ww, wh = self.weights
        cx, cy, w, h = self._centre_size(boxes)
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = (deltas[..., 2] / ww).clamp(max=self.scale_clamp)
        dh = (deltas[..., 3] / wh).clamp(max=self.scale_clamp)
        pcx, pcy = dx * w + cx, dy * h + cy
        pw, ph = torch.exp(dw) * w, torch.exp(dh) * h
        return torch.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=-1)
