"""Whole models: ``SingleFrameFCOS`` (baseline) and ``UltraDet`` (temporal), built by name."""

from .base import VideoDetector
from .build import META_ARCH_REGISTRY, build_model
from .single_frame_fcos import SingleFrameFCOS
from .ultradet import UltraDet

__all__ = ["META_ARCH_REGISTRY", "SingleFrameFCOS", "UltraDet", "VideoDetector", "build_model"]
