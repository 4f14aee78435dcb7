"""Relation layers: candidates attend to the candidates of the current and earlier frames, with
a learned bias from their relative geometry (Relation Networks, Hu et al. 2018, as in UltraDet).

A layer is written for one set of queries and one set of keys plus a visibility mask, so the
same module serves the clip forward (all frames' candidates at once, block-causal mask) and
streaming (the current frame's candidates against the buffered ones).
"""

from typing import Optional

import torch
from torch import nn

from .attention import MaskedMultiheadAttention


def relative_geometry(query_boxes: torch.Tensor, key_boxes: torch.Tensor) -> torch.Tensor:
    """[Q, S, 4] scale-invariant relative position of each key box w.r.t. each query box:
    ``log(|dx|/w), log(|dy|/h), log(w'/w), log(h'/h)`` (Relation Networks' geometry feature),
    computed on (x, y) pairs at once: it runs per relation layer for every streamed frame."""
    query_centre, query_size = _centre_and_size(query_boxes)
    key_centre, key_size = _centre_and_size(key_boxes)
    offset = ((key_centre[None] - query_centre[:, None]).abs() / query_size[:, None]).clamp(min=1e-3)
    return torch.cat((offset, key_size[None] / query_size[:, None]), dim=-1).log()


def _centre_and_size(boxes: torch.Tensor):
    """Centres [N, 2] and sizes [N, 2] (at least 1 px) of XYXY boxes."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)


class RelationLayer(nn.Module):
    """Attention with a geometric bias, then a feed-forward block; post-norm residuals."""

    def __init__(self, dim: int, num_heads: int, geometry_dim: int = 32):
        super().__init__()
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.geometry = nn.Sequential(
            nn.Linear(4, geometry_dim), nn.ReLU(inplace=True), nn.Linear(geometry_dim, num_heads)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(inplace=True), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self,
        features: torch.Tensor,
        boxes: torch.Tensor,
        key_features: torch.Tensor,
        key_boxes: torch.Tensor,
        mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """``features`` [Q, D] with ``boxes`` [Q, 4] attend to ``key_features`` [S, D] at
        ``key_boxes`` [S, 4] where ``mask`` [Q, S] is True (None: all). Returns the updated [Q, D]."""
        bias = self.geometry(relative_geometry(boxes, key_boxes)).permute(2, 0, 1)[None]  # [1, H, Q, S]
        attended = self.attention(features[None], key_features[None], None if mask is None else mask[None], bias)[0]
        x = self.norm1(features + attended)
        return self.norm2(x + self.ffn(x))
