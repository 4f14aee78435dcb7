"""Video lesion detectors (floor 3): backbones, the dense (FCOS) head, UltraDet's temporal RoI
head and the meta-architectures built by ``build_model(cfg)``, each chosen by name in a registry
(MODEL.BACKBONE.NAME, MODEL.DENSE_HEAD.NAME, MODEL.ROI_HEADS.NAME, MODEL.META_ARCHITECTURE)."""

from .backbone import BACKBONE_REGISTRY, ResNet, build_backbone, load_torchvision_resnet_weights
from .dense_heads import DENSE_HEAD_REGISTRY, FCOSHead, build_dense_head
from .meta_arch import META_ARCH_REGISTRY, SingleFrameFCOS, UltraDet, VideoDetector, build_model
from .roi_heads import ROI_HEADS_REGISTRY, TemporalRoIHead, build_roi_heads

__all__ = [
    "BACKBONE_REGISTRY",
    "DENSE_HEAD_REGISTRY",
    "FCOSHead",
    "META_ARCH_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "TemporalRoIHead",
    "ResNet",
    "SingleFrameFCOS",
    "UltraDet",
    "VideoDetector",
    "build_backbone",
    "build_dense_head",
    "build_model",
    "build_roi_heads",
    "load_torchvision_resnet_weights",
]
