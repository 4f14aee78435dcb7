"""Detection building blocks in pure PyTorch (floor 2: imports only torch and floor 1)."""

from .box_ops import box_area, box_iou, generalized_box_iou
from .nms import batched_nms, nms, nms_pure
from .roi_align import ROIAlign, roi_align, roi_align_pure
