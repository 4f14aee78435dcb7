"""Data structures shared by datasets, models and evaluation (floor 1: imports only torch)."""

from .boxes import Boxes, pairwise_intersection, pairwise_iou
from .instances import Instances

__all__ = ["Boxes", "Instances", "pairwise_intersection", "pairwise_iou"]
