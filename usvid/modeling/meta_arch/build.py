"""Meta-architecture registry and ``build_model(cfg)`` (detectron2 names)."""

import torch

from usvid.config import resolve_device
from usvid.utils.registry import Registry

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Whole-model classes, built as ``cls(cfg)``; the name comes from
``MODEL.META_ARCHITECTURE``."""


def build_model(cfg) -> torch.nn.Module:
    """Build ``cfg.MODEL.META_ARCHITECTURE`` and move it to ``cfg.MODEL.DEVICE`` ("auto" = CUDA
    when available, else CPU), in channels-last memory order with MODEL.CHANNELS_LAST. Weights
    are loaded separately (``Checkpointer``)."""
    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
    model = model.to(resolve_device(cfg.MODEL.DEVICE))
    return model.to(memory_format=torch.channels_last) if cfg.MODEL.CHANNELS_LAST else model
