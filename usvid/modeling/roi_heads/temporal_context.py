"""Negative temporal context aggregation (NTCA, UltraDet).

A candidate box of frame t is also looked at in the previous frames: RoI features are pooled
at the SAME box location from each buffered frame's (channel-reduced) res4 map and the
candidate attends to them. A real
lesion looks alike at that spot in neighbouring frames, while a decoy (a fat lobule or vessel
that elongates, fades or drifts) does not — that "negative" context is what lets the head
suppress single-frame false positives.
"""

import torch
from torch import nn

from usvid.layers import roi_align

from .attention import MaskedMultiheadAttention


class NegativeTemporalContextAggregation(nn.Module):
    def __init__(
        self,
        in_channels: int,
        context_channels: int,
        stride: int,
        pooler_resolution: int,
        sampling_ratio: int,
        dim: int,
        num_heads: int,
        max_offset: int,
    ):
        super().__init__()
        self.spatial_scale = 1.0 / stride
        self.pooler_resolution = pooler_resolution
        self.sampling_ratio = sampling_ratio
        # Each frame's res4 is reduced ONCE to a thin "context map" that later frames pool from;
        # it is what the streaming buffer keeps, so pooling W buffered frames stays cheap.
        self.embed = nn.Sequential(nn.Conv2d(in_channels, context_channels, 1), nn.ReLU(inplace=True))
        self.context_proj = nn.Sequential(nn.Linear(context_channels * pooler_resolution**2, dim), nn.ReLU(inplace=True))
        # Which previous frame (1 = the last one) a context feature comes from: the pattern of
        # change over time is the signal, so the order must be visible to the attention.
        self.offset_embedding = nn.Embedding(max(max_offset, 1), dim)
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def context_maps(self, res4: torch.Tensor) -> torch.Tensor:
        """[F, C, h, w] res4 -> [F, context_channels, h, w] maps for later frames to pool from."""
        return self.embed(res4)

    def forward(
        self,
        features: torch.Tensor,
        boxes: torch.Tensor,
        context_maps: torch.Tensor,
        context_index: torch.Tensor,
    ) -> torch.Tensor:
        """Update candidate ``features`` [B, K, D] (boxes [B, K, 4]) with their temporal context.

        ``context_index`` [B, W] (int64) gives, for each frame b and offset w (0 = previous
        frame), the index into ``context_maps`` [F, Cc, h, w] (from ``context_maps()``) of that
        context frame, or -1 when it does not exist (start of the video). Frames without any
        context get only the LayerNorm.
        """
        num_frames, num_boxes, dim = features.shape
        window = context_index.shape[1]
        valid = context_index >= 0  # [B, W]
        if window == 0:
            return self.norm(features)
        # Frame b's W context maps stacked along channels ([B, W*C, h, w], zeros where missing):
        # every context frame is pooled at the same boxes, so ONE RoIAlign call pools them all
        # (bilinear pooling acts per channel) — the same call in the clip and streaming paths.
        stacked = context_maps[context_index.clamp(min=0)] * valid[:, :, None, None, None].to(context_maps.dtype)
        stacked = stacked.flatten(1, 2)
        frame_index = torch.arange(num_frames, device=boxes.device, dtype=boxes.dtype).repeat_interleave(num_boxes)
        rois = torch.cat((frame_index[:, None], boxes.reshape(-1, 4)), dim=1)
        size = (self.pooler_resolution, self.pooler_resolution)
        pooled = roi_align(stacked, rois, size, self.spatial_scale, self.sampling_ratio, True)  # [B*K, W*C, r, r]
        pooled = pooled.view(num_frames, num_boxes, window, -1)
        context = self.context_proj(pooled) + self.offset_embedding.weight[:window]  # [B, K, W, D]
        mask = valid[:, None, None, :].expand(-1, num_boxes, 1, -1).reshape(num_frames * num_boxes, 1, window)
        attended = self.attention(features.reshape(-1, 1, dim), context.reshape(-1, window, dim), mask)
        return self.norm(features + attended.view(num_frames, num_boxes, dim))
