"""RoIAlign (He et al., Mask R-CNN) in pure, vectorised, autograd-differentiable PyTorch.

Semantics are exactly torchvision's / detectron2's ``ROIAlign`` kernel: each output bin
averages a ``grid_h x grid_w`` lattice of bilinear samples (``sampling_ratio``, or
``ceil(roi_size / output_size)`` when ``sampling_ratio <= 0``); a sample outside
``[-1, H] x [-1, W]`` contributes 0, one inside is clamped to the map; ``aligned=True`` shifts
box corners by -0.5 pixel so that box coordinates address pixel centres correctly.

Bilinear sampling and the bin average are separable along y and x, so each RoI is described
by per-axis (pixel index, weight) pairs, which form two small dense interpolation matrices;
pooling is then two matrix products per image, ``Ay @ F @ Ax^T``. Measured on one CPU thread
this was 2-35x faster than gathering every sampled pixel (the approach of torchvision's
Python fallback) for maps from 16x16 to 200x200, and its backward pass is two more matrix
products instead of a scatter-add.
"""

from typing import Sequence, Tuple, Union

import torch
from torch import nn

from .optional_torchvision import prefer_torchvision

_BoxesType = Union[torch.Tensor, Sequence[torch.Tensor]]
_SizeType = Union[int, Tuple[int, int]]


def _as_pair(output_size: _SizeType) -> Tuple[int, int]:
    if isinstance(output_size, int):
        return output_size, output_size
    if len(output_size) != 2:
        raise ValueError(f"roi_align: output_size must be an int or (height, width); got {output_size!r}")
    return int(output_size[0]), int(output_size[1])


def _as_roi_tensor(boxes: _BoxesType, input: torch.Tensor) -> torch.Tensor:
    """Boxes as ``Tensor[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)``."""
    if isinstance(boxes, torch.Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                "roi_align: a boxes tensor must be Tensor[K, 5] (batch_index, x1, y1, x2, y2); "
                f"got {tuple(boxes.shape)} (pass a list of Tensor[L, 4] for per-image boxes)"
            )
        rois = boxes
    else:
        per_image = list(boxes)
        for i, image_boxes in enumerate(per_image):
            if image_boxes.dim() != 2 or image_boxes.shape[1] != 4:
                raise ValueError(
                    f"roi_align: boxes[{i}] must be Tensor[L, 4] (x1, y1, x2, y2); got {tuple(image_boxes.shape)}"
                )
        if not per_image:
            return input.new_zeros((0, 5))
        coords = torch.cat(per_image, dim=0)
        batch_index = torch.cat(
            [
                torch.full((len(b), 1), float(i), dtype=coords.dtype, device=coords.device)
                for i, b in enumerate(per_image)
            ]
        )
        rois = torch.cat([batch_index, coords], dim=1)
    batch_size = input.shape[0]
    if rois.shape[0] and (rois[:, 0].min() < 0 or rois[:, 0].max() >= batch_size):
        raise ValueError(
            f"roi_align: box batch indices must lie in [0, {batch_size - 1}] for an input of "
            f"batch size {batch_size}; got range [{rois[:, 0].min().item()}, {rois[:, 0].max().item()}]"
        )
    return rois


def _axis_samples(
    start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, num_bins: int, max_grid: int, size: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pixel indices and weights along one axis, both ``[K, num_bins, max_grid * 2]``.

    Sample ``s`` of bin ``b`` sits at ``start + b * bin + (s + 0.5) * bin / grid`` (evaluated in
    torchvision's order, so float32 results match its kernel) and reads pixels ``low`` and
    ``high`` with linear weights. Weights already include the 1/grid average and are 0 for
    samples outside ``[-1, size]`` and for lattice padding (``s >= grid`` of a smaller RoI).
    """
    dtype = start.dtype
    bins = torch.arange(num_bins, dtype=dtype, device=start.device)[None, :, None]
    steps = torch.arange(max_grid, dtype=dtype, device=start.device)[None, None, :]
    grid = grid[:, None, None]
    safe_grid = grid.clamp(min=1)
    bin_size = bin_size[:, None, None]
    coord = start[:, None, None] + bins * bin_size + (steps + 0.5) * bin_size / safe_grid
    inside = (coord >= -1.0) & (coord <= size) & (steps < grid)
    coord = coord.clamp(min=0)
    low = coord.long()  # truncation == floor for non-negative coordinates
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coord = torch.where(at_edge, low.to(dtype), coord)
    frac = coord - low.to(dtype)
    scale = inside.to(dtype) / safe_grid
    weights = torch.stack([(1.0 - frac) * scale, frac * scale], dim=-1)
    indices = torch.stack([low, high], dim=-1)
    k = start.shape[0]
    return indices.reshape(k, num_bins, max_grid * 2), weights.reshape(k, num_bins, max_grid * 2)


def _interpolation_matrix(index: torch.Tensor, weight: torch.Tensor, size: int) -> torch.Tensor:
    """Dense ``[K, bins, size]`` matrix whose rows average the samples of one bin."""
    matrix = weight.new_zeros(index.shape[0], index.shape[1], size)
    return matrix.scatter_add_(2, index, weight)


def _pool_separably(features, batch_index, y_index, y_weight, x_index, x_weight):
    """Per image: ``Ay @ F @ Ax^T`` with dense per-axis interpolation matrices."""
    _, channels, height, width = features.shape
    num_rois, pooled_h = y_index.shape[:2]
    pooled_w = x_index.shape[1]
    y_matrix = _interpolation_matrix(y_index, y_weight, height)
    x_matrix_t = _interpolation_matrix(x_index, x_weight, width).transpose(1, 2)
    selections, pieces = [], []
    for image in torch.unique(batch_index).tolist():
        selected = (batch_index == image).nonzero().squeeze(1)
        n = selected.numel()
        image_rows = features[image].transpose(0, 1).reshape(height, channels * width)
        rows = y_matrix[selected].reshape(n * pooled_h, height) @ image_rows
        pooled = rows.view(n, pooled_h * channels, width) @ x_matrix_t[selected]
        pieces.append(pooled.view(n, pooled_h, channels, pooled_w).permute(0, 2, 1, 3))
        selections.append(selected)
    output = features.new_zeros(num_rois, channels, pooled_h, pooled_w)
    return output.index_copy(0, torch.cat(selections), torch.cat(pieces))


def roi_align_pure(
    input: torch.Tensor,
    boxes: _BoxesType,
    output_size: _SizeType,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoIAlign with ``torchvision.ops.roi_align``'s signature and semantics (``roi_align``
    runs torchvision's kernel instead where torchvision imports).

    Args:
        input: ``Tensor[N, C, H, W]`` feature map.
        boxes: ``Tensor[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)``, or a list of
            ``Tensor[L, 4]`` per image, in input-image coordinates.
        output_size: ``(height, width)`` of the pooled output (or one int).
        spatial_scale: maps box coordinates to the feature map (e.g. 1/16 for stride 16).
        sampling_ratio: samples per bin along each axis; ``<= 0`` means adaptive
            ``ceil(roi_size / output_size)``.
        aligned: shift boxes by -0.5 pixel (detectron2's recommended, correct alignment).

    Returns ``Tensor[K, C, output_h, output_w]``, differentiable w.r.t. ``input``.
    """
    if input.dim() != 4:
        raise ValueError(f"roi_align: input must be Tensor[N, C, H, W]; got {tuple(input.shape)}")
    pooled_h, pooled_w = _as_pair(output_size)
    # Half precision inputs are pooled in float32 (as torchvision does under autocast).
    compute_dtype = input.dtype if input.dtype in (torch.float32, torch.float64) else torch.float32
    features = input.to(compute_dtype)
    # Box coordinates are constants for the op (torchvision has no gradient for them).
    rois = _as_roi_tensor(boxes, input).detach().to(compute_dtype)
    _, channels, height, width = features.shape
    num_rois = rois.shape[0]
    if num_rois == 0:  # an empty result that is still attached to the graph
        return features.reshape(-1)[:0].view(0, channels, pooled_h, pooled_w).to(input.dtype)

    offset = 0.5 if aligned else 0.0
    start_x = rois[:, 1] * spatial_scale - offset
    start_y = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - start_x
    roi_h = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:  # legacy behaviour: force malformed boxes to be at least 1x1
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    bin_h = roi_h / pooled_h
    bin_w = roi_w / pooled_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, float(sampling_ratio))
        grid_w = torch.full_like(roi_w, float(sampling_ratio))
    else:
        grid_h = torch.ceil(roi_h / pooled_h)
        grid_w = torch.ceil(roi_w / pooled_w)
    max_grid_h = max(int(grid_h.max().item()), 1)
    max_grid_w = max(int(grid_w.max().item()), 1)

    y_index, y_weight = _axis_samples(start_y, bin_h, grid_h, pooled_h, max_grid_h, height)
    x_index, x_weight = _axis_samples(start_x, bin_w, grid_w, pooled_w, max_grid_w, width)
    output = _pool_separably(features, rois[:, 0].long(), y_index, y_weight, x_index, x_weight)
    return output.to(input.dtype)


roi_align = prefer_torchvision("roi_align", roi_align_pure)


class ROIAlign(nn.Module):
    """``roi_align`` as a module with fixed parameters (detectron2's ``ROIAlign``)."""

    def __init__(self, output_size: _SizeType, spatial_scale: float, sampling_ratio: int, aligned: bool = True):
        super().__init__()
        self.output_size = _as_pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: torch.Tensor, rois: _BoxesType) -> torch.Tensor:
        """``input``: ``Tensor[N, C, H, W]``; ``rois``: ``Tensor[K, 5]`` or list of ``Tensor[L, 4]``."""
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
