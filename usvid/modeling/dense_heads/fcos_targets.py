"""FCOS target assignment on a single feature level (res4 at stride 16, or P3 at stride 8).

Every ground-truth box is mapped to this one level (no FPN size ranges). A location is positive
for a box when it lies inside the box and within ``radius * stride`` of the box centre (FCOS
centre sampling); in addition the location whose cell contains the box centre is always
positive, so that boxes smaller than a stride still get one positive (CenterNet's rule) — the
phantom's lesions shrink to a few pixels as the probe sweeps out of them.
"""

from typing import List, Tuple

import torch


def grid_locations(height: int, width: int, stride: int, device) -> torch.Tensor:
    """Image coordinates ``(x, y)`` of the centre of each feature cell, row-major, shape [h*w, 2]."""
    ys = torch.arange(height, dtype=torch.float32, device=device) * stride + stride // 2
    xs = torch.arange(width, dtype=torch.float32, device=device) * stride + stride // 2
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=1)


def centerness_from_ltrb(ltrb: torch.Tensor) -> torch.Tensor:
    """FCOS centre-ness ``sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b))`` (0 outside the box)."""
    ltrb = ltrb.clamp(min=0)
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    ratio = (lr.min(dim=1).values / lr.max(dim=1).values.clamp(min=1e-6)) * (
        tb.min(dim=1).values / tb.max(dim=1).values.clamp(min=1e-6)
    )
    return ratio.sqrt()


def assign_fcos_targets(
    locations: torch.Tensor, gt_boxes: torch.Tensor, stride: int, radius: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Match locations [L, 2] to the boxes [G, 4] of one frame.

    Returns ``matched`` (int64 [L]: index of the assigned box, -1 = background; among several
    candidate boxes the smallest wins, as in FCOS), ``ltrb`` (float [L, 4]: distances from the
    location to the assigned box's sides, zeros for background) and ``is_centre_cell`` (bool
    [L]: the location is the one closest to its assigned box's centre).
    """
    num_locations = locations.shape[0]
    if gt_boxes.numel() == 0:
        return (
            torch.full((num_locations,), -1, dtype=torch.long, device=locations.device),
            locations.new_zeros(num_locations, 4),
            torch.zeros(num_locations, dtype=torch.bool, device=locations.device),
        )
    x, y = locations[:, 0:1], locations[:, 1:2]
    ltrb = torch.stack(
        (x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y), dim=2
    )  # [L, G, 4]
    inside_box = ltrb.min(dim=2).values > 0
    centres = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    offset = (locations[:, None, :] - centres[None]).abs()  # [L, G, 2]
    near_centre = (offset <= radius * stride).all(dim=2)
    owns_centre = _nearest_location_mask(locations, centres)
    candidate = (inside_box & near_centre) | owns_centre
    areas = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]))[None].expand(num_locations, -1)
    areas = torch.where(candidate, areas, torch.full_like(areas, float("inf")))
    min_area, matched = areas.min(dim=1)
    matched[torch.isinf(min_area)] = -1
    rows = torch.arange(num_locations, device=locations.device)
    picked = ltrb[rows, matched.clamp(min=0)]
    picked[matched < 0] = 0
    is_centre_cell = owns_centre[rows, matched.clamp(min=0)] & (matched >= 0)
    return matched, picked, is_centre_cell


def _nearest_location_mask(locations: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """[L, G] mask with one True per box: the location closest to its centre, i.e. the cell
    containing the centre (or the nearest cell when the centre lies beyond the last one)."""
    distances = torch.cdist(centres, locations)  # [G, L]
    mask = torch.zeros(locations.shape[0], centres.shape[0], dtype=torch.bool, device=locations.device)
    mask[distances.argmin(dim=1), torch.arange(centres.shape[0], device=locations.device)] = True
    return mask


def assign_targets_per_frame(
    locations: torch.Tensor, gt_boxes_per_frame: List[torch.Tensor], stride: int, radius: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of several frames of one size, flattened: ``is_positive`` [F*L] bool,
    ``target_boxes`` [F*L, 4] (the assigned GT box) and ``centerness`` [F*L].

    The centre-ness target is FCOS's, except that the cell closest to a box's centre gets 1: for
    a box smaller than a stride that cell is its only positive and its location may lie outside
    the box (plain centre-ness 0), which would rank the box's only detection away at test time.
    """
    positives, boxes, centerness = [], [], []
    for gt in gt_boxes_per_frame:
        matched, ltrb, is_centre_cell = assign_fcos_targets(locations, gt, stride, radius)
        positives.append(matched >= 0)
        boxes.append(gt[matched.clamp(min=0)] if gt.numel() else locations.new_zeros(len(matched), 4))
        centerness.append(torch.where(is_centre_cell, torch.ones_like(ltrb[:, 0]), centerness_from_ltrb(ltrb)))
    return torch.cat(positives), torch.cat(boxes), torch.cat(centerness)
