"""Backbone registry: ``MODEL.BACKBONE.NAME`` names a function ``cfg -> nn.Module``."""

from usvid.utils.registry import Registry

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """Functions ``fn(cfg) -> backbone`` whose backbone maps an NCHW
image batch to ``{"res3": stride-8, "res4": stride-16 features}`` (res3 is read only by
the top-down P3 map, see ``feature_levels``) and exposes ``output_channels(name)`` / ``output_stride(name)``."""


def build_backbone(cfg):
    """Build the backbone named by ``cfg.MODEL.BACKBONE.NAME``."""
    return BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg)
