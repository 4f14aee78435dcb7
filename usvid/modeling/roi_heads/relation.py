"""Relation layers: candidates attend to the candidates of the current and earlier frames, with
a learned bias from their relative geometry (Relation Networks, Hu et al. 2018, as in UltraDet).

A layer is written for one set of queries and one set of keys plus a visibility mask, so the
same module serves the clip forward (all frames' candidates at once, block-causal mask) and
streaming (the current frame's candidates against the buffered ones).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MaskedMultiheadAttention


def relative_geometry(query_boxes: torch.Tensor, key_boxes: torch.Tensor) -> torch.Tensor:
    """[Q, S, 4] scale-invariant relative position of each key box w.r.t. each query box:
    ``log(|dx|/w), log(|dy|/h), log(w'/w), log(h'/h)`` (Relation Networks' geometry feature)."""

    def centre_size(b):
        w = (b[:, 2] - b[:, 0]).clamp(min=1.0)
        h = (b[:, 3] - b[:, 1]).clamp(min=1.0)
        return (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w, h

    qx, qy, qw, qh = centre_size(query_boxes)
    kx, ky, kw, kh = centre_size(key_boxes)
    dx = torch.log(((kx[None] - qx[:, None]).abs() / qw[:, None]).clamp(min=1e-3))
    dy = torch.log(((ky[None] - qy[:, None]).abs() / qh[:, None]).clamp(min=1e-3))
    dw = torch.log(kw[None] / qw[:, None])
    dh = torch.log(kh[None] / qh[:, None])
    return torch.stack((dx, dy, dw, dh), dim=-1)


class RelationLayer(nn.Module):
    """Attention with a geometric bias, then a feed-forward block; post-norm residuals."""

    def __init__(self, dim: int, num_heads: int, geometry_dim: int = 32):
        super().__init__()
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.geometry = nn.Sequential(nn.Linear(4, geometry_dim), nn.ReLU(inplace=True), nn.Linear(geometry_dim, num_heads))
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(inplace=True), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self,
        features: torch.Tensor,
        boxes: torch.Tensor,
        key_features: torch.Tensor,
        key_boxes: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """``features`` [Q, D] with ``boxes`` [Q, 4] attend to ``key_features`` [S, D] at
        ``key_boxes`` [S, 4] where ``mask`` [Q, S] is True. Returns the updated [Q, D]."""
        bias = self.geometry(relative_geometry(boxes, key_boxes)).permute(2, 0, 1)[None]  # [1, H, Q, S]
        attended = self.attention(features[None], key_features[None], mask[None], bias)[0]
        x = self.norm1(features + attended)
        return self.norm2(x + self.ffn(x))
