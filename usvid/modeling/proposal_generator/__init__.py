"""Anchor-free FCOS head on one level (res4 or P3): the single-frame detector and UltraDet's
proposal generator."""

from .fcos_head import FCOSHead, FCOSPredictions, clip_boxes
from .fcos_targets import assign_fcos_targets, centerness_from_ltrb, grid_locations

__all__ = ["FCOSHead", "FCOSPredictions", "clip_boxes", "assign_fcos_targets", "centerness_from_ltrb", "grid_locations"]
