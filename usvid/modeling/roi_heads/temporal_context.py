"""Negative temporal context aggregation (NTCA, UltraDet).

A candidate box of frame t is also looked at in the previous frames: RoI features are pooled
at the SAME box location from each buffered res4 map and the candidate attends to them. A real
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
        self.context_proj = nn.Sequential(nn.Linear(in_channels * pooler_resolution**2, dim), nn.ReLU(inplace=True))
        # Which previous frame (1 = the last one) a context feature comes from: the pattern of
        # change over time is the signal, so the order must be visible to the attention.
        self.offset_embedding = nn.Embedding(max(max_offset, 1), dim)
        self.attention = MaskedMultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        features: torch.Tensor,
        boxes: torch.Tensor,
        feature_maps: torch.Tensor,
        context_index: torch.Tensor,
    ) -> torch.Tensor:
        """Update candidate ``features`` [B, K, D] (boxes [B, K, 4]) with their temporal context.

        ``context_index`` [B, W] (int64) gives, for each frame b and offset w (0 = previous
        frame), the index into ``feature_maps`` [F, C, h, w] of that context frame, or -1 when it
        does not exist (start of the video). Frames without any context get only the LayerNorm.
        """
        num_frames, num_boxes, _ = boxes.shape
        window = context_index.shape[1]
        dim = features.shape[-1]
        valid = context_index >= 0  # [B, W]
        context = features.new_zeros(num_frames, window, num_boxes, dim)
        if window and bool(valid.any()):
            frame_idx, offset_idx = torch.nonzero(valid, as_tuple=True)
            source = context_index[frame_idx, offset_idx]  # feature-map index per (b, w) pair
            roi_boxes = boxes[frame_idx].reshape(-1, 4)
            roi_index = source[:, None].expand(-1, num_boxes).reshape(-1, 1).to(roi_boxes.dtype)
            pooled = roi_align(
                feature_maps,
                torch.cat((roi_index, roi_boxes), dim=1),
                (self.pooler_resolution, self.pooler_resolution),
                self.spatial_scale,
                self.sampling_ratio,
                True,
            )
            projected = self.context_proj(pooled.flatten(1)).view(-1, num_boxes, dim)
            projected = projected + self.offset_embedding(offset_idx)[:, None]
            context = context.index_put((frame_idx, offset_idx), projected)
        keys = context.permute(0, 2, 1, 3).reshape(num_frames * num_boxes, window, dim)
        mask = valid[:, None, None, :].expand(-1, num_boxes, 1, -1).reshape(num_frames * num_boxes, 1, window)
        attended = self.attention(features.reshape(-1, 1, dim), keys, mask).view(num_frames, num_boxes, dim)
        return self.norm(features + attended)
