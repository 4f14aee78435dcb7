"""Dense-head registry: ``MODEL.DENSE_HEAD.NAME`` names the per-location detection head, the
whole head of SingleFrameFCOS and the proposal generator of UltraDet."""

from usvid.utils.registry import Registry

DENSE_HEAD_REGISTRY = Registry("DENSE_HEAD")
DENSE_HEAD_REGISTRY.__doc__ = """Dense detection heads on one feature level, built as
``cls.from_config(cfg, in_channels, stride)``. A head maps features [F, C, h, w] to predictions
and offers ``losses(predictions, gt_boxes, prefix)`` and ``top_boxes(...)`` (see FCOSHead)."""


def build_dense_head(cfg, in_channels: int, stride: int):
    """Build the head named by ``cfg.MODEL.DENSE_HEAD.NAME`` on a stride-``stride`` map of
    ``in_channels`` channels."""
    return DENSE_HEAD_REGISTRY.get(cfg.MODEL.DENSE_HEAD.NAME).from_config(cfg, in_channels, stride)
