"""Detection building blocks in pure PyTorch (floor 2: imports only torch and floor 1).

torchvision is used only where it imports (never on the CPU machines this project targets):
``nms`` and ``roi_align`` then dispatch to its kernels; ``nms_pure`` / ``roi_align_pure``
always run the pure-PyTorch implementations. ``box_area``, ``box_iou`` and ``generalized_box_iou``
are torchvision's names for the box geometry of ``usvid.structures.box_ops`` (floor 1), which
holds their one implementation.
"""

from usvid.structures.box_ops import box_area, box_iou, generalized_box_iou

from .batch_norm import FrozenBatchNorm2d, convert_frozen_batchnorm, get_norm
from .conv_lstm import ConvLSTMCell
from .losses import giou_loss, sigmoid_focal_loss, smooth_l1_loss
from .nms import batched_nms, nms, nms_pure
from .roi_align import ROIAlign, roi_align, roi_align_pure
from .shape_spec import ShapeSpec
from .wrappers import Conv2d

__all__ = [
    "Conv2d",
    "ConvLSTMCell",
    "FrozenBatchNorm2d",
    "ROIAlign",
    "ShapeSpec",
    "batched_nms",
    "box_area",
    "box_iou",
    "convert_frozen_batchnorm",
    "generalized_box_iou",
    "get_norm",
    "giou_loss",
    "nms",
    "nms_pure",
    "roi_align",
    "roi_align_pure",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
]
