"""Candidate features: RoIAlign on res4 (shared with NTCA's context, see ``CandidatePooler``),
a res5 stage (BasicBlocks, stride 2, torchvision's ``layer4``), global average pooling and one
FC layer -> one vector per candidate box."""

import torch
from torch import nn
from torch.nn import functional as F

from usvid.layers import roi_align

from ..backbone.resnet import make_res_stage


class CandidatePooler(nn.Module):
    """One RoIAlign call per frame batch: the candidates' own res4 features and, stacked along
    channels, the context maps of the frames they look back at (bilinear pooling acts per
    channel, so pooling them together equals pooling them apart, at the cost of one call)."""

    def __init__(self, stride: int, resolution: int, sampling_ratio: int):
        super().__init__()
        self.spatial_scale = 1.0 / stride
        self.resolution = resolution
        self.sampling_ratio = sampling_ratio

    def forward(self, feature_maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``feature_maps`` [F, C, h, w], ``boxes`` [F, K, 4] (image pixels; frame f's boxes pool
        from map f) -> [F * K, C, r, r]."""
        num_frames, num_boxes, _ = boxes.shape
        frame_index = torch.arange(num_frames, device=boxes.device, dtype=boxes.dtype).repeat_interleave(num_boxes)
        rois = torch.cat((frame_index[:, None], boxes.reshape(-1, 4)), dim=1)
        size = (self.resolution, self.resolution)
        return roi_align(feature_maps, rois, size, self.spatial_scale, self.sampling_ratio, True)


class Res5BoxHead(nn.Module):
    """Pooled candidate features -> res5 stage (the backbone's next stage, so ImageNet res5
    weights fit) -> global average pool -> one FC layer: one ``fc_dim`` vector per candidate."""

    def __init__(self, in_channels: int, num_blocks: int, norm: str, fc_dim: int):
        super().__init__()
        self.res5 = make_res_stage(num_blocks, in_channels, 2 * in_channels, 2, norm)
        self.fc = nn.Linear(2 * in_channels, fc_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled res4 features [N, C, r, r] -> candidate features [N, fc_dim]."""
        return F.relu(self.fc(self.res5(pooled).mean(dim=(2, 3))))
