"""The feature maps the heads read, by name: the backbone's ``res4`` (stride 16, the paper's
single level) or ``p3`` (stride 8), which brings res4's semantics to res3's resolution with one
top-down step (FPN's P3 without the other levels).

At stride 16 a lesion smaller than a feature cell owns a single FCOS location and a 7x7 RoIAlign
samples less than one cell of it, so lesions of 8-20 px -- a lesion entering or leaving the
imaging plane -- are rarely localised to IoU 0.5 or told from speckle; at stride 8 they span
several cells. Every level has res4's width. ``MODEL.FCOS.IN_FEATURE`` picks the FCOS head's
map and ``MODEL.ROI_BOX_HEAD.IN_FEATURE`` the RoI head's; when both say ``p3`` they share one.
"""

from typing import Dict, Optional

import torch
from torch import nn
from torch.nn import functional as F

FEATURE_LEVELS = ("res4", "p3")


class TopDownP3(nn.Module):
    """``conv3x3(lateral(res3) + upsample(top(res4)))`` at res3's stride and res4's width, so a
    head built for res4 runs on it unchanged."""

    def __init__(self, backbone):
        super().__init__()
        channels = backbone.output_channels("res4")
        self.lateral = nn.Conv2d(backbone.output_channels("res3"), channels, 1)
        self.top = nn.Conv2d(channels, channels, 1)
        self.output = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        res3 = features["res3"]
        top = F.interpolate(self.top(features["res4"]), size=res3.shape[-2:], mode="nearest")
        return self.output(self.lateral(res3) + top)


def check_feature_level(name: str, key: str) -> str:
    """``name`` if it is a known level, else a ValueError naming the config ``key``."""
    if name not in FEATURE_LEVELS:
        raise ValueError(f"{key}={name!r} is not a known feature; valid: {list(FEATURE_LEVELS)}")
    return name


def level_stride(backbone, name: str) -> int:
    """The stride of level ``name`` (P3 has res3's)."""
    return backbone.output_stride("res3" if name == "p3" else "res4")


def build_top_down(backbone, *level_names: str) -> Optional[TopDownP3]:
    """The P3 builder if any of the configured levels is ``p3``, else None (nothing to compute)."""
    return TopDownP3(backbone) if "p3" in level_names else None
