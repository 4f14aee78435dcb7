"""The feature map the FCOS head runs on, chosen by ``MODEL.FCOS.IN_FEATURE``.

``"res4"`` (stride 16) is the paper's single level. ``"p3"`` (stride 8) brings res4's semantics
to res3's resolution with one top-down step (FPN's P3 without the other levels). At stride 16 a
lesion smaller than a feature cell owns a single location and its box is regressed from up to
half a cell away, so lesions of 8-20 px -- a lesion entering or leaving the imaging plane -- are
rarely localised to IoU 0.5; at stride 8 they own several locations near their centre.
"""

from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

FCOS_IN_FEATURES = ("res4", "p3")


class Res4Input(nn.Module):
    """The backbone's res4 as it is."""

    def __init__(self, backbone):
        super().__init__()
        self.out_channels = backbone.output_channels("res4")
        self.stride = backbone.output_stride("res4")

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        return features["res4"]


class TopDownP3(nn.Module):
    """``conv3x3(lateral(res3) + upsample(top(res4)))`` at res3's stride and width."""

    def __init__(self, backbone):
        super().__init__()
        channels = backbone.output_channels("res3")
        self.out_channels = channels
        self.stride = backbone.output_stride("res3")
        self.lateral = nn.Conv2d(channels, channels, 1)
        self.top = nn.Conv2d(backbone.output_channels("res4"), channels, 1)
        self.output = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        res3 = features["res3"]
        top = F.interpolate(self.top(features["res4"]), size=res3.shape[-2:], mode="nearest")
        return self.output(self.lateral(res3) + top)


def build_fcos_input(cfg, backbone) -> nn.Module:
    """The module mapping the backbone's outputs to the FCOS head's input (``out_channels`` and
    ``stride`` attributes say what the head gets)."""
    name = cfg.MODEL.FCOS.IN_FEATURE
    if name == "res4":
        return Res4Input(backbone)
    if name == "p3":
        return TopDownP3(backbone)
    raise ValueError(f"MODEL.FCOS.IN_FEATURE={name!r} is not a known feature; valid: {list(FCOS_IN_FEATURES)}")
