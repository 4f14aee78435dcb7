"""Axis-aligned boxes in absolute XYXY pixel coordinates, as detectron2's ``Boxes``.

Every detector, mapper and evaluator in usvid passes boxes around as ``Boxes`` so that the
coordinate convention (XYXY, absolute pixels, float) is fixed in one place instead of being
re-derived from raw tensors in each module.
"""

from typing import Iterator, List, Tuple, Union

import torch

from .box_ops import box_area, box_iou, clip_boxes

_IndexType = Union[int, slice, torch.Tensor, List[int]]


class Boxes:
    """An Nx4 float tensor of boxes ``(x1, y1, x2, y2)`` with the common box operations.

    The wrapped tensor is ``self.tensor``; all methods keep it on its device.
    """

    def __init__(self, tensor: torch.Tensor):
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(tensor, dtype=torch.float32)
        elif not tensor.is_floating_point():
            tensor = tensor.float()
        if tensor.numel() == 0:
            # An empty box list of any shape (e.g. []) becomes 0x4 so that cat() and indexing
            # work uniformly on frames without annotations.
            tensor = tensor.reshape(-1, 4)
        if tensor.dim() != 2 or tensor.size(-1) != 4:
            raise ValueError(f"Boxes expects an Nx4 tensor (x1, y1, x2, y2); got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    def clone(self) -> "Boxes":
        return Boxes(self.tensor.clone())

    def to(self, device) -> "Boxes":
        return Boxes(self.tensor.to(device=device))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """Area of each box (negative widths/heights are not clamped, as in detectron2)."""
        return box_area(self.tensor)

    def clip(self, box_size: Tuple[int, int]) -> None:
        """Clip the boxes in place to an image of size ``(height, width)``."""
        if not torch.isfinite(self.tensor).all():
            raise ValueError("Boxes.clip: box tensor contains infinite or NaN coordinates")
        height, width = box_size
        self.tensor = clip_boxes(self.tensor, height, width)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """Bool mask of boxes whose width and height are both strictly above ``threshold``."""
        box = self.tensor
        widths = box[:, 2] - box[:, 0]
        heights = box[:, 3] - box[:, 1]
        return (widths > threshold) & (heights > threshold)

    def inside_box(self, box_size: Tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """Bool mask of boxes lying inside an ``(height, width)`` image, allowing
        ``boundary_threshold`` pixels of overhang on each side."""
        height, width = box_size
        t = boundary_threshold
        return (
            (self.tensor[..., 0] >= -t)
            & (self.tensor[..., 1] >= -t)
            & (self.tensor[..., 2] < width + t)
            & (self.tensor[..., 3] < height + t)
        )

    def get_centers(self) -> torch.Tensor:
        """Nx2 tensor of box centres ``(x, y)``."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale the coordinates in place (e.g. after resizing the image)."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def __getitem__(self, item: _IndexType) -> "Boxes":
        """Index like a tensor along the box dimension; an int gives a 1-box ``Boxes``."""
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        selected = self.tensor[item]
        if selected.dim() != 2:
            raise IndexError(f"Indexing Boxes with {item!r} did not give an Nx4 result")
        return Boxes(selected)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield each box as a length-4 tensor."""
        yield from self.tensor

    @classmethod
    def cat(cls, boxes_list: List["Boxes"]) -> "Boxes":
        """Concatenate a list of ``Boxes`` into one (an empty list gives 0 boxes)."""
        if not isinstance(boxes_list, (list, tuple)):
            raise TypeError(f"Boxes.cat expects a list of Boxes; got {type(boxes_list).__name__}")
        if len(boxes_list) == 0:
            return cls(torch.empty(0, 4))
        if not all(isinstance(b, Boxes) for b in boxes_list):
            kinds = sorted({type(b).__name__ for b in boxes_list})
            raise TypeError(f"Boxes.cat expects only Boxes in the list; got {kinds}")
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """NxM IoU matrix; a pair without positive intersection (disjoint, zero-area or degenerate
    boxes) gets 0 (the rule of ``usvid.structures.box_ops``)."""
    return box_iou(boxes1.tensor, boxes2.tensor)
