"""Backbones: a torchvision-named BasicBlock ResNet up to res4 (stride 16)."""

from .build import BACKBONE_REGISTRY, build_backbone
from .resnet import BasicBlock, ResNet, build_resnet_backbone, make_res_stage
from .torchvision_weights import load_torchvision_resnet_weights

__all__ = [
    "BACKBONE_REGISTRY",
    "BasicBlock",
    "ResNet",
    "build_backbone",
    "build_resnet_backbone",
    "load_torchvision_resnet_weights",
    "make_res_stage",
]
