"""False-positive sequences: kept boxes linked through time into sequences (METRICS.md, FP_r
steps 4 and 5).

A clinician perceives a wrong box that stays on the same structure for many frames as ONE false
alarm, so the metric counts connected sequences of boxes rather than boxes.

Only pairs with IoU > 0.5 can ever become a link (the predecessor is the first box reaching the
window's largest IoU, and only if that IoU is > 0.5), so the expensive IoU pass keeps just those
pairs, once, for the most inclusive score threshold. Any higher threshold keeps a subset of the
boxes, and its links are found by filtering the stored pairs: FP70, FP80, FP90 and the whole
FP-vs-recall curve share one IoU pass.
"""

import numpy as np

from .segment_ops import first_argmax_per_owner, pairs_above_iou_in_group

__all__ = ["LINK_WINDOW", "LINK_IOU", "TemporalLinks"]

# A box may link to the kept boxes of this many previous frames (empty frames count too).
LINK_WINDOW = 5
# A link needs an IoU strictly greater than this.
LINK_IOU = 0.5


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
        frame = box_frame[index]
        boxes_before_frame = np.r_[0, np.cumsum(np.bincount(frame, minlength=len(frame_video)))]
        window_first_frame = np.maximum(frame - LINK_WINDOW, video_first_frame[frame_video[frame]])
        window_start = boxes_before_frame[window_first_frame]
        window_count = boxes_before_frame[frame] - window_start
        kept_boxes = boxes[index]
        owner, earlier, self._iou = pairs_above_iou_in_group(
            kept_boxes, kept_boxes, window_start, window_count, LINK_IOU
        )
        # Global box indices; owners stay non-decreasing and earlier boxes in time order.
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
        root, fp_box = self._sequences(kept, correct)
        return fp_box

    def fp_sequences_per_video(self, kept: np.ndarray, correct: np.ndarray, num_videos: int) -> np.ndarray:
        """Number of false-positive sequences in each video among the ``kept`` boxes."""
        root, fp_box = self._sequences(kept, correct)
        fp_first_box = fp_box & (root == np.arange(len(kept)))
        fp_video = self._frame_video[self._box_frame[fp_first_box]]
        return np.bincount(fp_video, minlength=num_videos).astype(np.int64)

    def _sequences(self, kept: np.ndarray, correct: np.ndarray):
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
