"""Data structures shared by datasets, models and evaluation (floor 1: imports only torch).

``box_ops`` holds the one implementation of box geometry (area, IoU, GIoU, clipping) on raw
tensors; ``Boxes`` and ``pairwise_iou`` are its detectron2-style wrappers.
"""

from .boxes import Boxes, pairwise_iou
from .instances import Instances

__all__ = ["Boxes", "Instances", "pairwise_iou"]
