"""Negative temporal context aggregation (NTCA, UltraDet).

A candidate box of frame t is also looked at in the previous frames: features are pooled at the
SAME box location from each buffered frame's context map (a thin 1x1-conv reduction of its
res4) and the candidate attends to them. A real lesion looks alike at that spot in neighbouring
frames, while a decoy (a fat lobule or vessel that elongates, fades or drifts) does not — that
"negative" context is what lets the head suppress single-frame false positives.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MaskedMultiheadAttention


class NegativeTemporalContextAggregation(nn.Module):
    """NTCA: each candidate attends to the features pooled at its box in the context maps of up
    to ``max_offset`` previous frames (with an embedding of the offset) and is updated by what
    changed there; see the module docstring for why that suppresses decoys."""

    def __init__(
        self,
        in_channels: int,
        context_channels: int,
        pooler_resolution: int,
        dim: int,
        num_heads: int,
        max_offset: int,
    ):
        super().__init__()
        self.context_channels = context_channels
        self.pooler_resolution = pooler_resolution
        # Each frame's res4 is reduced ONCE to a thin context map that later frames pool from;
        # it is what the streaming buffer keeps, so pooling W buffered frames stays cheap.
        self.embed = nn.Sequential(nn.Conv2d(in_channels, context_channels, 1), nn.ReLU(inplace=True))
        self.context_proj = nn.Sequential(
            nn.Linear(context_channels * pooler_resolution**2, dim), nn.ReLU(inplace=True)
        )
        # Which previous frame (1 = the last one) a context feature comes from: the pattern of
        # change over time is the signal, so the order must be visible to the attention.
        self.offset_embedding = nn.Embedding(max(max_offset, 1), dim)
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def context_maps(self, res4: torch.Tensor) -> torch.Tensor:
        """[F, C, h, w] res4 -> [F, context_channels, h, w] maps for later frames to pool from."""
        return self.embed(res4)

    @staticmethod
    def stack_context(context_maps: torch.Tensor, context_index: torch.Tensor) -> torch.Tensor:
        """[B, W * Cc, h, w]: for each frame b, the maps of its W context frames along channels
        (``context_index`` [B, W] indexes ``context_maps``; -1 = no such frame -> zeros)."""
        valid = (context_index >= 0)[:, :, None, None, None].to(context_maps.dtype)
        return (context_maps[context_index.clamp(min=0)] * valid).flatten(1, 2)

    def forward(
        self, features: torch.Tensor, pooled_context: torch.Tensor, context_index: torch.Tensor
    ) -> torch.Tensor:
        """Update candidate ``features`` [B, K, D] with their temporal context.

        ``pooled_context`` [B * K, W * Cc, r, r] is ``stack_context(...)`` pooled at each
        candidate's box; ``context_index`` [B, W] marks missing context frames (-1, start of the
        video), which the attention ignores. Frames without any context get only the LayerNorm.
        """
        num_frames, num_boxes, dim = features.shape
        window = context_index.shape[1]
        if window == 0:
            return self.norm(features)
        pooled = pooled_context.reshape(
            num_frames * num_boxes * window, self.context_channels, *pooled_context.shape[-2:]
        )
        if pooled.shape[-1] != self.pooler_resolution:
            pooled = F.adaptive_avg_pool2d(pooled, self.pooler_resolution)
        context = self.context_proj(pooled.reshape(num_frames, num_boxes, window, -1))
        context = context + self.offset_embedding.weight[:window]  # [B, K, W, D]
        valid = context_index >= 0
        mask = valid[:, None, None, :].expand(-1, num_boxes, 1, -1).reshape(num_frames * num_boxes, 1, window)
        attended = self.attention(features.reshape(-1, 1, dim), context.reshape(-1, window, dim), mask)
        return self.norm(features + attended.view(num_frames, num_boxes, dim))
