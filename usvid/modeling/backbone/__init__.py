"""Backbones: a torchvision-named BasicBlock ResNet up to res4 (stride 16), and the optional
stride-8 top-down P3 map the heads may read instead of res4."""

from .build import BACKBONE_REGISTRY, build_backbone
from .feature_levels import FEATURE_LEVELS, TopDownP3, build_top_down, check_feature_level, level_stride
from .resnet import BasicBlock, ResNet, build_resnet_backbone, make_res_stage
from .torchvision_weights import load_torchvision_resnet_weights

__all__ = [
    "BACKBONE_REGISTRY",
    "FEATURE_LEVELS",
    "TopDownP3",
    "build_top_down",
    "check_feature_level",
    "level_stride",
    "BasicBlock",
    "ResNet",
    "build_backbone",
    "build_resnet_backbone",
    "load_torchvision_resnet_weights",
    "make_res_stage",
]
