"""Dense (per-location) detection heads on one feature level (res4 or P3): the FCOS head, which
is the whole head of the single-frame detector and UltraDet's proposal generator."""

from .build import DENSE_HEAD_REGISTRY, build_dense_head
from .fcos_head import FCOSHead, FCOSPredictions
from .fcos_targets import assign_fcos_targets, centerness_from_ltrb, grid_locations

__all__ = [
    "DENSE_HEAD_REGISTRY",
    "FCOSHead",
    "FCOSPredictions",
    "assign_fcos_targets",
    "build_dense_head",
    "centerness_from_ltrb",
    "grid_locations",
]
