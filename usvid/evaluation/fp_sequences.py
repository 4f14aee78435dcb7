"""False-positive sequences: kept boxes linked through time into sequences (docs/en/metrics.md,
FP steps 4 and 5).

A clinician perceives a wrong box that stays on the same structure for many frames as ONE false
alarm, so the metric counts connected sequences of boxes rather than boxes.

Only pairs with IoU > 0.5 can ever become a link (the predecessor is the first box reaching the
window's largest IoU, and only if that IoU is > 0.5), so the expensive IoU pass keeps just those
pairs, once, for the most inclusive score threshold. Any higher threshold keeps a subset of the
boxes, and its links are found by filtering the stored pairs: FP70, FP80, FP90 and the whole
FP-vs-recall curve share one IoU pass.
"""

import numpy as np

from .segment_ops import first_argmax_per_owner, matched_iou

__all__ = ["LINK_WINDOW", "LINK_IOU", "TemporalLinks"]

# A box may link to the kept boxes of this many previous frames (empty frames count too).
LINK_WINDOW = 5
# A link needs an IoU strictly greater than this.
LINK_IOU = 0.5
# Upper bound on the box pairs screened at once (frames x boxes x boxes of one chunk).
_PAIRS_PER_CHUNK = 1 << 20


class TemporalLinks:
    """The linkable pairs among a candidate set of boxes of a set of videos.

    Args:
        boxes: ``(D, 4)`` boxes in (video, frame, detection) order.
        box_frame: ``(D,)`` global frame index of each box (non-decreasing).
        frame_video: ``(F,)`` video index of every global frame.
        video_first_frame: ``(V,)`` global index of each video's first frame.
        candidates: ``(D,)`` bool, the boxes any later query may keep.
    """

    def __init__(
        self,
        boxes: np.ndarray,
        box_frame: np.ndarray,
        frame_video: np.ndarray,
        video_first_frame: np.ndarray,
        candidates: np.ndarray,
    ):
        self.candidates = candidates
        self._box_frame = box_frame
        self._frame_video = frame_video
        index = np.flatnonzero(candidates)
        owner, earlier, self._iou = _linkable_pairs(boxes[index], box_frame[index], frame_video, video_first_frame)
        # Global box indices; owners non-decreasing, earlier boxes in time then detection order.
        self._owner = index[owner]
        self._earlier = index[earlier]

    def predecessors(self, kept: np.ndarray) -> np.ndarray:
        """Per box: its predecessor among the ``kept`` boxes (-1 if none or not kept): the first
        box (oldest frame first, detection order) reaching the largest IoU, if that IoU > 0.5."""
        if np.any(kept & ~self.candidates):
            raise ValueError("TemporalLinks: the kept boxes must be a subset of the candidate boxes")
        both_kept = kept[self._owner] & kept[self._earlier]
        _, predecessor = first_argmax_per_owner(
            self._iou[both_kept], self._owner[both_kept], self._earlier[both_kept], len(kept)
        )
        return predecessor

    def false_positive_boxes(self, kept: np.ndarray, correct: np.ndarray) -> np.ndarray:
        """Per box: whether it is kept and belongs to a false-positive sequence."""
        return self.sequences(kept, correct)[1]

    def fp_sequences_per_video(self, kept: np.ndarray, correct: np.ndarray, num_videos: int) -> np.ndarray:
        """Number of false-positive sequences in each video among the ``kept`` boxes."""
        root, fp_box = self.sequences(kept, correct)
        fp_first_box = fp_box & (root == np.arange(len(kept)))
        fp_video = self._frame_video[self._box_frame[fp_first_box]]
        return np.bincount(fp_video, minlength=num_videos).astype(np.int64)

    def sequences(self, kept: np.ndarray, correct: np.ndarray):
        """``(root, fp_box)``: the first box of each box's sequence, and whether each box is kept
        and in a false-positive sequence. ``correct`` tells which boxes have their centre in a
        lesion; a sequence is false-positive unless strictly more than 90 % of its boxes are."""
        root = _sequence_roots(self.predecessors(kept))
        kept_root = root[kept]
        sizes = np.bincount(kept_root, minlength=len(kept))
        correct_counts = np.bincount(kept_root[correct[kept]], minlength=len(kept))
        # correct / size > 0.9 written exactly in integers: 10 * correct > 9 * size.
        fp_root = ~(10 * correct_counts > 9 * sizes)
        return root, kept & fp_root[root]


def _linkable_pairs(boxes: np.ndarray, box_frame: np.ndarray, frame_video: np.ndarray, video_first_frame: np.ndarray):
    """Every (box, earlier box) pair of the same video at most ``LINK_WINDOW`` frames apart with
    IoU > ``LINK_IOU``, as ``(owner, earlier, iou)`` sorted by owner, then earlier box.

    IoU > 0.5 needs an x-overlap above half of each box's width (inter <= x-overlap * height, and
    inter > area / 2 for both boxes). That cheap test screens all pairs of frames f and f - lag
    at once, on frames padded to a common box count (NaN padding fails it), with a margin
    against rounding; the exact IoU is computed on the few pairs that pass. Screening a padded
    grid avoids per-pair index gathering, which made a dense test set (16 kept boxes per frame,
    80 candidates each) several times slower. Chunks of frames keep the grid bounded even when a
    few frames hold many boxes.
    """
    num_frames = len(frame_video)
    counts = np.bincount(box_frame, minlength=num_frames)
    first_box = np.r_[0, np.cumsum(counts)]
    crosses_video = (
        np.arange(num_frames)[:, None] - np.arange(1, LINK_WINDOW + 1) < video_first_frame[frame_video][:, None]
    )
    owners, earliers = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for first, stop in _frame_chunks(counts.tolist()):
        context = max(first - LINK_WINDOW, 0)
        width = int(counts[context:stop].max())
        if width == 0:
            continue
        # Row k, column i: box i of frame context + k (NaN where the frame has fewer boxes).
        x1, x2 = np.full((2, stop - context, width), np.nan)
        chunk_boxes = np.arange(first_box[context], first_box[stop])
        row, column = box_frame[chunk_boxes] - context, chunk_boxes - first_box[box_frame[chunk_boxes]]
        x1[row, column], x2[row, column] = boxes[chunk_boxes, 0], boxes[chunk_boxes, 2]
        half_width = 0.5 * (1 - 1e-6) * (x2 - x1)
        for lag in range(1, LINK_WINDOW + 1):
            low = max(first, context + lag)  # owner frames low .. stop - 1, earlier frames - lag
            if low >= stop:
                continue
            now, before = slice(low - context, stop - context), slice(low - lag - context, stop - lag - context)
            overlap = np.minimum(x2[now, :, None], x2[before, None, :])
            overlap -= np.maximum(x1[now, :, None], x1[before, None, :])
            which, i, j = np.nonzero(overlap >= np.maximum(half_width[now, :, None], half_width[before, None, :]))
            frame = low + which
            same_video = ~crosses_video[frame, lag - 1]
            owners.append(first_box[frame[same_video]] + i[same_video])
            earliers.append(first_box[frame[same_video] - lag] + j[same_video])
    owner, earlier = np.concatenate(owners), np.concatenate(earliers)
    iou = matched_iou(boxes[owner], boxes[earlier])
    linkable = iou > LINK_IOU
    order = np.lexsort((earlier[linkable], owner[linkable]))
    return owner[linkable][order], earlier[linkable][order], iou[linkable][order]


def _frame_chunks(counts):
    """Consecutive frame ranges ``[first, stop)`` whose screening grids (frames x width^2, the
    width counting the ``LINK_WINDOW`` context frames before ``first``) stay within
    ``_PAIRS_PER_CHUNK``; at least one frame each."""
    first = 0
    while first < len(counts):
        width = max(counts[max(first - LINK_WINDOW, 0) : first + 1])
        stop = first + 1
        while stop < len(counts):
            grown = max(width, counts[stop])
            if (stop + 1 - first) * grown * grown > _PAIRS_PER_CHUNK:
                break
            width, stop = grown, stop + 1
        yield first, stop
        first = stop


def _sequence_roots(predecessor: np.ndarray) -> np.ndarray:
    """The first box of each box's sequence (a box without predecessor is its own root). Links
    always point to an earlier box (a previous frame), so one forward pass over the linked boxes
    in index order resolves every tree: linear time."""
    root = np.arange(len(predecessor), dtype=np.int64)
    linked = np.flatnonzero(predecessor >= 0)
    root_list = root.tolist()
    for index, parent in zip(linked.tolist(), predecessor[linked].tolist()):
        root_list[index] = root_list[parent]
    return np.asarray(root_list, dtype=np.int64)
