"""Vectorised NumPy box comparisons inside groups, the building block of the video metrics.

The metrics compare each detection with one small group of boxes (the ground truth of its
frame). Python loops over frames would dominate the run time on long test sets, so every group
is expanded into one flat array of (owner, candidate) pairs and reduced with ``ufunc.reduceat``
(``first_argmax_per_owner`` also picks the predecessor links of fp_sequences.py). Pairs of one
owner are contiguous and keep the candidates' order, which is what the tie rules ("the first box
reaching the maximum") rely on.
Owners are processed in chunks so memory stays bounded however large the groups are.
"""

from typing import Iterator, Tuple

import numpy as np
import torch

from usvid.structures.box_ops import matched_box_iou

__all__ = [
    "matched_iou",
    "best_iou_in_group",
    "centre_inside_any_in_group",
    "first_argmax_per_owner",
]

# Upper bound on the (owner, candidate) pairs materialised at once (~50 MB of temporaries).
_PAIRS_PER_CHUNK = 1 << 20


def matched_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of corresponding boxes of two ``(P, 4)`` float64 XYXY arrays, computed by the one IoU
    implementation (``usvid.structures.box_ops.matched_box_iou``, on zero-copy tensor views):
    a pair without positive intersection (disjoint, zero-area, or NaN padding) gets 0."""
    return matched_box_iou(torch.from_numpy(boxes_a), torch.from_numpy(boxes_b)).numpy()


def best_iou_in_group(
    boxes: np.ndarray, candidates: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """For each box ``i``: the largest IoU with ``candidates[starts[i] : starts[i] + counts[i]]``
    and the index (into ``candidates``) of the FIRST candidate reaching it.

    Boxes with an empty group get IoU -1 and index -1, so no IoU threshold >= 0 accepts them.
    """
    best_iou = np.full(len(boxes), -1.0, dtype=np.float64)
    best_index = np.full(len(boxes), -1, dtype=np.int64)
    for lo, hi, owner, candidate in _pair_chunks(starts, counts):
        iou = matched_iou(boxes[lo + owner], candidates[candidate])
        chunk_iou, chunk_index = first_argmax_per_owner(iou, owner, candidate, hi - lo)
        best_iou[lo:hi] = chunk_iou
        best_index[lo:hi] = chunk_index
    return best_iou, best_index


def centre_inside_any_in_group(
    boxes: np.ndarray, regions: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Whether the centre of box ``i`` lies inside (borders included) any of
    ``regions[starts[i] : starts[i] + counts[i]]``."""
    inside_any = np.zeros(len(boxes), dtype=bool)
    for lo, hi, owner, candidate in _pair_chunks(starts, counts):
        owned = boxes[lo + owner]
        region = regions[candidate]
        cx = (owned[:, 0] + owned[:, 2]) / 2.0
        cy = (owned[:, 1] + owned[:, 3]) / 2.0
        inside = (cx >= region[:, 0]) & (cx <= region[:, 2]) & (cy >= region[:, 1]) & (cy <= region[:, 3])
        inside_any[lo:hi] = np.bincount(owner[inside], minlength=hi - lo) > 0
    return inside_any


def _pair_chunks(starts: np.ndarray, counts: np.ndarray) -> Iterator[Tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(lo, hi, owner, candidate)`` for consecutive owner ranges ``[lo, hi)``: owner
    ``lo + owner[k]`` is paired with candidate ``candidate[k]``, grouped by owner, candidates in
    increasing order. Each chunk holds about ``_PAIRS_PER_CHUNK`` pairs (at least one owner)."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    pairs_before = np.r_[0, np.cumsum(counts)]
    lo = 0
    while lo < len(counts):
        hi = int(np.searchsorted(pairs_before, pairs_before[lo] + _PAIRS_PER_CHUNK, side="right")) - 1
        hi = min(max(hi, lo + 1), len(counts))
        chunk_counts = counts[lo:hi]
        owner = np.repeat(np.arange(hi - lo, dtype=np.int64), chunk_counts)
        # Position of each pair inside its owner's group, shifted to the owner's first candidate.
        within = np.arange(len(owner), dtype=np.int64) - np.repeat(pairs_before[lo:hi] - pairs_before[lo], chunk_counts)
        candidate = np.repeat(starts[lo:hi], chunk_counts) + within
        yield lo, hi, owner, candidate
        lo = hi


def first_argmax_per_owner(
    values: np.ndarray, owner: np.ndarray, candidate: np.ndarray, num_owners: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Per owner ``0 .. num_owners - 1``: the largest of its pairs' values and the candidate of
    the FIRST pair reaching it (``owner`` must be non-decreasing); owners without pairs get -1
    and -1."""
    best_value = np.full(num_owners, -1.0, dtype=np.float64)
    best_candidate = np.full(num_owners, -1, dtype=np.int64)
    if len(values) == 0:
        return best_value, best_candidate
    group_start = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    group_max = np.maximum.reduceat(values, group_start)
    group_sizes = np.diff(np.r_[group_start, len(values)])
    reaching = np.flatnonzero(values == np.repeat(group_max, group_sizes))
    first_reaching = reaching[np.r_[True, owner[reaching][1:] != owner[reaching][:-1]]]
    best_value[owner[group_start]] = group_max
    best_candidate[owner[group_start]] = candidate[first_reaching]
    return best_value, best_candidate
