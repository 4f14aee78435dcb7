"""Candidate features: RoIAlign on res4, a res5 stage (BasicBlocks, stride 2, torchvision's
``layer4``), global average pooling and one FC layer -> one vector per candidate box."""

import torch
from torch import nn
from torch.nn import functional as F

from usvid.layers import roi_align

from ..backbone.resnet import make_res_stage


class Res5BoxHead(nn.Module):
    def __init__(
        self,
        in_channels: int,
        stride: int,
        num_blocks: int,
        norm: str,
        pooler_resolution: int,
        sampling_ratio: int,
        fc_dim: int,
    ):
        super().__init__()
        self.spatial_scale = 1.0 / stride
        self.pooler_resolution = pooler_resolution
        self.sampling_ratio = sampling_ratio
        self.res5 = make_res_stage(num_blocks, in_channels, 2 * in_channels, 2, norm)
        self.fc = nn.Linear(2 * in_channels, fc_dim)

    def forward(self, feature_maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``feature_maps`` [F, C, h, w], ``boxes`` [F, K, 4] (image pixels) -> [F, K, fc_dim]."""
        num_frames, num_boxes, _ = boxes.shape
        frame_index = torch.arange(num_frames, device=boxes.device, dtype=boxes.dtype)
        rois = torch.cat((frame_index.repeat_interleave(num_boxes)[:, None], boxes.reshape(-1, 4)), dim=1)
        pooled = roi_align(
            feature_maps,
            rois,
            (self.pooler_resolution, self.pooler_resolution),
            self.spatial_scale,
            self.sampling_ratio,
            True,
        )
        x = self.res5(pooled).mean(dim=(2, 3))
        return F.relu(self.fc(x)).view(num_frames, num_boxes, -1)
