"""Video lesion detectors (floor 3): backbones, the FCOS head, UltraDet's temporal RoI head and
the meta-architectures built by ``build_model(cfg)``."""

from .backbone import BACKBONE_REGISTRY, ResNet, build_backbone, load_torchvision_resnet_weights
from .meta_arch import META_ARCH_REGISTRY, SingleFrameFCOS, UltraDet, VideoDetector, build_model

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "ResNet",
    "SingleFrameFCOS",
    "UltraDet",
    "VideoDetector",
    "build_backbone",
    "build_model",
    "load_torchvision_resnet_weights",
]
