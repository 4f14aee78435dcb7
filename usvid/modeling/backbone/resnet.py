"""ResNet-18/34 (BasicBlock) up to res4 (stride 16), named like torchvision's ResNet.

The submodules are called ``conv1``, ``bn1``, ``layer1`` .. ``layer3`` (and the RoI head's
``res5`` stage is built by the same ``make_res_stage`` as torchvision's ``layer4``) so that a
torchvision ImageNet state dict loads by name (see ``torchvision_weights.py``). The base width
(``MODEL.RESNETS.STEM_OUT_CHANNELS`` / ``RES2_OUT_CHANNELS``) is a config key: 64 is the paper's
network, 16-32 a CPU-sized one; every later stage doubles the width as in torchvision.
"""

from typing import Dict, List

import torch
from torch import nn
from torch.nn import functional as F

from usvid.layers import convert_frozen_batchnorm, get_norm

from .build import BACKBONE_REGISTRY

# Blocks per stage (res2, res3, res4, res5) of the BasicBlock ResNets.
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
# Output stride of each named feature.
FEATURE_STRIDES = {"stem": 4, "res2": 4, "res3": 8, "res4": 16}


def _norm_or_identity(norm: str, channels: int) -> nn.Module:
    module = get_norm(norm, channels)
    return nn.Identity() if module is None else module


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (two 3x3 convs + identity / 1x1 projection shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm: str = "BN"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = _norm_or_identity(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = _norm_or_identity(norm, out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                _norm_or_identity(norm, out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu_(out + shortcut)


def make_res_stage(num_blocks: int, in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Sequential:
    """One ResNet stage: the first block changes stride / width, the rest keep them."""
    blocks = [BasicBlock(in_channels, out_channels, stride, norm)]
    blocks += [BasicBlock(out_channels, out_channels, 1, norm) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def freeze_module(module: nn.Module) -> nn.Module:
    """Stop gradients and turn BatchNorm into FrozenBatchNorm2d (detectron2's ``freeze()``)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return convert_frozen_batchnorm(module)


class ResNet(nn.Module):
    """A BasicBlock ResNet returning ``{"res4": stride-16 features}`` (and any other requested
    stage in ``out_features``).

    ``freeze_at`` follows detectron2: 0 trains everything, 1 freezes the stem, k >= 2 freezes
    the stem and res2 .. res<k>.
    """

    def __init__(
        self,
        depth: int = 18,
        in_channels: int = 3,
        stem_out_channels: int = 64,
        res2_out_channels: int = 64,
        norm: str = "BN",
        freeze_at: int = 0,
        out_features: List[str] = ("res4",),
    ):
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(
                f"MODEL.RESNETS.DEPTH={depth} is not supported; valid: {sorted(BLOCKS_PER_STAGE)} (BasicBlock ResNets)"
            )
        unknown = set(out_features) - set(FEATURE_STRIDES)
        if unknown:
            raise ValueError(f"ResNet out_features {sorted(unknown)} unknown; valid: {sorted(FEATURE_STRIDES)}")
        self.depth = depth
        self.norm = norm
        self.out_features = list(out_features)
        self.conv1 = nn.Conv2d(in_channels, stem_out_channels, 7, 2, 3, bias=False)
        self.bn1 = _norm_or_identity(norm, stem_out_channels)
        blocks = BLOCKS_PER_STAGE[depth]
        widths = [res2_out_channels * 2**i for i in range(3)]
        self.layer1 = make_res_stage(blocks[0], stem_out_channels, widths[0], 1, norm)
        self.layer2 = make_res_stage(blocks[1], widths[0], widths[1], 2, norm)
        self.layer3 = make_res_stage(blocks[2], widths[1], widths[2], 2, norm)
        self._out_channels = {"stem": stem_out_channels, "res2": widths[0], "res3": widths[1], "res4": widths[2]}
        self._init_weights()
        self._freeze(freeze_at)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last norm of each block so every block starts as the identity, which
        # makes training from scratch (the phantom default) markedly more stable.
        for m in self.modules():
            if isinstance(m, BasicBlock) and isinstance(m.bn2, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.zeros_(m.bn2.weight)

    def _freeze(self, freeze_at: int) -> None:
        stages = [("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",)]
        for names in stages[:freeze_at]:
            for name in names:
                setattr(self, name, freeze_module(getattr(self, name)))

    @property
    def res5_blocks(self) -> int:
        """Blocks of the res5 stage (torchvision's ``layer4``) that the RoI head builds."""
        return BLOCKS_PER_STAGE[self.depth][3]

    def output_channels(self, name: str = "res4") -> int:
        return self._out_channels[name]

    def output_stride(self, name: str = "res4") -> int:
        return FEATURE_STRIDES[name]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outputs = {}
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        outputs["stem"] = x
        for name, layer in (("res2", self.layer1), ("res3", self.layer2), ("res4", self.layer3)):
            x = layer(x)
            outputs[name] = x
        return {k: outputs[k] for k in self.out_features}


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg) -> ResNet:
    """ResNet from ``MODEL.RESNETS.*`` and ``MODEL.BACKBONE.FREEZE_AT``; input channels follow
    ``len(MODEL.PIXEL_MEAN)`` (1 = grayscale ultrasound, 3 = RGB/BGR)."""
    r = cfg.MODEL.RESNETS
    return ResNet(
        depth=r.DEPTH,
        in_channels=len(cfg.MODEL.PIXEL_MEAN),
        stem_out_channels=r.STEM_OUT_CHANNELS,
        res2_out_channels=r.RES2_OUT_CHANNELS,
        norm=r.NORM,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        out_features=["res3", "res4"],
    )
