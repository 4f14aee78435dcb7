"""Clinical video lesion-detection metrics, exactly as docs/en/metrics.md ("Exact definitions")
defines them, including where they differ from UltraDet's published evaluation code.

``evaluate_video_predictions`` returns the numbers of the ultrasound video detection literature
(AP50, AP75, mAP, Pr70/80/90, FP70/80/90, R@16). ``VideoDetectionEvaluation`` exposes the same
computation step by step (precision-recall curve, score thresholds, false-positive sequences per
video, FP rate against recall) so that plots and per-video tables reuse the metric instead of
re-deriving it differently.

Everything is vectorised with NumPy: the per-detection facts that do not depend on a threshold
(best ground-truth box and its IoU, "centre inside a lesion", rank within the frame) are computed
once; each IoU threshold then needs one ``np.unique`` and each recall level one linking pass.
"""

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .fp_sequences import TemporalLinks
from .segment_ops import best_iou_in_group, centre_inside_any_in_group

__all__ = [
    "IOU_THRESHOLDS",
    "RECALL_LEVELS",
    "TOP_K",
    "PRCurve",
    "VideoDetectionEvaluation",
    "evaluate_video_predictions",
    "sorted_video_ids",
    "voc_average_precision",
]

# t = 0.50, 0.55, ..., 0.95, rounded so that 0.55 is the double nearest 0.55 (not 0.5 + 0.05).
IOU_THRESHOLDS: Tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
RECALL_LEVELS: Tuple[float, ...] = (0.7, 0.8, 0.9)
TOP_K = 16

VideoFrames = Sequence[np.ndarray]


@dataclass(frozen=True)
class PRCurve:
    """The pooled precision-recall curve at one IoU threshold, detections by descending score."""

    iou_threshold: float
    scores: np.ndarray
    recall: np.ndarray
    precision: np.ndarray


def voc_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC area under the precision envelope (docs/en/metrics.md, "AP50, AP75, mAP")."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


class VideoDetectionEvaluation:
    """Detections and ground truth of a set of videos, prepared once for every video metric.

    Args:
        predictions: ``{video_id: [frame_0, ...]}``, each frame a ``(K, 5)`` array
            ``x1, y1, x2, y2, score``.
        ground_truths: ``{video_id: [frame_0, ...]}``, each frame a ``(G, 4)`` array.
        fps: frame rate of the videos, to turn false-positive sequences per frame into per minute.
    """

    def __init__(
        self,
        predictions: Mapping[Hashable, VideoFrames],
        ground_truths: Mapping[Hashable, VideoFrames],
        fps: float = 30.0,
    ):
        if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive finite number, got {fps!r}")
        self.fps = float(fps)
        self.video_ids = _matching_video_ids(predictions, ground_truths)
        self._load(predictions, ground_truths)
        self._prepare_matching()
        self._true_positive_cache: Dict[float, np.ndarray] = {}
        self._curve_cache: Dict[float, PRCurve] = {}
        self._links: Optional[TemporalLinks] = None

    # ----------------------------------------------------------------------------------------
    # sizes
    @property
    def num_videos(self) -> int:
        return len(self.video_ids)

    @property
    def num_frames(self) -> int:
        return len(self.frame_video)

    @property
    def num_gt(self) -> int:
        return len(self.gt_boxes)

    @property
    def num_dets(self) -> int:
        return len(self.det_boxes)

    # ----------------------------------------------------------------------------------------
    # matching and the precision-recall curve
    def true_positives(self, iou_threshold: float) -> np.ndarray:
        """Per detection (input order): True if greedy per-frame matching at ``iou_threshold``
        makes it a true positive. A detection is a TP iff its best ground-truth box reaches the
        threshold and no earlier detection of the frame (by descending score) took that box, so
        all frames are matched at once by keeping the first candidate of each box."""
        key = float(iou_threshold)
        if key not in self._true_positive_cache:
            order = self._frame_score_order
            candidates = order[self._best_gt_iou[order] >= key]
            _, first = np.unique(self._best_gt[candidates], return_index=True)
            is_tp = np.zeros(self.num_dets, dtype=bool)
            is_tp[candidates[first]] = True
            self._true_positive_cache[key] = is_tp
        return self._true_positive_cache[key]

    def pr_curve(self, iou_threshold: float = 0.5) -> PRCurve:
        """Pooled curve over every detection of every frame of every video (NaN recall if no GT)."""
        key = float(iou_threshold)
        if key not in self._curve_cache:
            self._curve_cache[key] = self._compute_pr_curve(key)
        return self._curve_cache[key]

    def _compute_pr_curve(self, iou_threshold: float) -> PRCurve:
        is_tp = self.true_positives(iou_threshold)[self._score_order]
        tp_cum = np.cumsum(is_tp, dtype=np.float64)
        ranks = np.arange(1, self.num_dets + 1, dtype=np.float64)
        recall = tp_cum / self.num_gt if self.num_gt else np.full(self.num_dets, np.nan)
        return PRCurve(float(iou_threshold), self._scores[self._score_order], recall, tp_cum / ranks)

    def average_precision(self, iou_threshold: float) -> float:
        if self.num_gt == 0:
            return math.nan
        curve = self.pr_curve(iou_threshold)
        return voc_average_precision(curve.recall, curve.precision)

    def _reaches(self, curve: PRCurve, recall: float) -> bool:
        return self.num_gt > 0 and self.num_dets > 0 and curve.recall[-1] >= recall

    def precision_at_recall(self, recall: float) -> float:
        """Pr_r: raw precision interpolated at recall r on the t = 0.5 curve; NaN if never reached."""
        curve = self.pr_curve(0.5)
        if not self._reaches(curve, recall):
            return math.nan
        return float(np.interp(recall, curve.recall, curve.precision))

    def score_threshold_at_recall(self, recall: float) -> float:
        """The score interpolated at recall r on the t = 0.5 curve; NaN if never reached."""
        curve = self.pr_curve(0.5)
        if not self._reaches(curve, recall):
            return math.nan
        return float(np.interp(recall, curve.recall, curve.scores))

    def gt_matched_at_top_k(self, k: int = TOP_K) -> np.ndarray:
        """Per ground-truth box (the order of ``gt_boxes``): whether one of the k best detections
        of its frame matches it at t = 0.5. Greedy matching visits detections by score, so the
        matches of the top k are exactly the full matching restricted to ranks < k."""
        matched_detections = self.true_positives(0.5) & (self._rank_in_frame < k)
        matched = np.zeros(self.num_gt, dtype=bool)
        matched[self._best_gt[matched_detections]] = True
        return matched

    def recall_at_top_k_per_video(self, k: int = TOP_K) -> Tuple[np.ndarray, np.ndarray]:
        """Per video: (ground-truth boxes matched by the k best detections of each frame (see
        ``gt_matched_at_top_k``), ground-truth boxes)."""
        matched = self.gt_matched_at_top_k(k)
        matched_per_video = np.bincount(self._gt_video[matched], minlength=self.num_videos)
        gt_per_video = np.bincount(self._gt_video, minlength=self.num_videos)
        return matched_per_video, gt_per_video

    def recall_at_top_k(self, k: int = TOP_K) -> float:
        """R@k pooled over all videos: matched ground-truth boxes / G (NaN without GT)."""
        if self.num_gt == 0:
            return math.nan
        matched, _ = self.recall_at_top_k_per_video(k)
        return float(matched.sum() / self.num_gt)

    # ----------------------------------------------------------------------------------------
    # false-positive sequences
    def fp_sequences_per_video(self, score_threshold: float) -> np.ndarray:
        """False-positive sequences of each video when every frame keeps its boxes with
        ``score > score_threshold`` (docs/en/metrics.md, FP steps 2 to 5)."""
        kept = self._scores > score_threshold
        return self._links_covering([score_threshold]).fp_sequences_per_video(kept, self._centre_in_gt, self.num_videos)

    def false_positive_box_flags(self, score_threshold: float) -> Dict[Hashable, List[np.ndarray]]:
        """Per video, per frame, per detection (input order): whether the box is kept at
        ``score_threshold`` and belongs to a false-positive sequence (the boxes FP_r counts, e.g.
        to draw them in red)."""
        fp_box = self._false_positive_boxes(score_threshold)
        per_frame = np.split(fp_box, self._dets_before_frame[1:]) if self.num_frames else []
        return {
            video_id: per_frame[first : first + count]
            for video_id, first, count in zip(self.video_ids, self.video_first_frame, self._frames_per_video())
        }

    def fp_sequence_frames(self, score_threshold: float) -> Dict[Hashable, List[int]]:
        """Per video: the frames (positions in the video's frame list) holding at least one box of
        a false-positive sequence at ``score_threshold`` (for hard-negative mining)."""
        frames = np.unique(self._det_frame[self._false_positive_boxes(score_threshold)])
        result: Dict[Hashable, List[int]] = {video_id: [] for video_id in self.video_ids}
        for frame in frames.tolist():
            video = int(self.frame_video[frame])
            result[self.video_ids[video]].append(frame - int(self.video_first_frame[video]))
        return result

    def false_positive_sequences(
        self, score_threshold: float
    ) -> Dict[Hashable, List[List[Tuple[int, Tuple[float, float], bool]]]]:
        """Per video: its false-positive sequences at ``score_threshold``, each a list of its boxes
        in detection order as ``(frame position in the video, box centre (x, y), centre in a GT box)``
        (to look at what the false alarms are, e.g. benchmarks/phantom_false_alarms.py)."""
        kept = self._scores > score_threshold
        root, fp_box = self._links_covering([score_threshold]).sequences(kept, self._centre_in_gt)
        result: Dict[Hashable, List[List[Tuple[int, Tuple[float, float], bool]]]] = {v: [] for v in self.video_ids}
        centres = (self.det_boxes[:, :2] + self.det_boxes[:, 2:]) / 2
        # The flagged boxes grouped by sequence (one sort, not one pass over all boxes per sequence);
        # the stable sort keeps each sequence's boxes in detection order.
        flagged = np.flatnonzero(fp_box)
        flagged = flagged[np.argsort(root[flagged], kind="stable")]
        for members in np.split(flagged, np.flatnonzero(np.diff(root[flagged])) + 1) if len(flagged) else []:
            video = int(self.frame_video[self._det_frame[members[0]]])
            first_frame = int(self.video_first_frame[video])
            result[self.video_ids[video]].append(
                [
                    (
                        int(self._det_frame[m]) - first_frame,
                        (float(centres[m, 0]), float(centres[m, 1])),
                        bool(self._centre_in_gt[m]),
                    )
                    for m in members
                ]
            )
        return result

    def _false_positive_boxes(self, score_threshold: float) -> np.ndarray:
        kept = self._scores > score_threshold
        return self._links_covering([score_threshold]).false_positive_boxes(kept, self._centre_in_gt)

    def _frames_per_video(self) -> np.ndarray:
        return np.bincount(self.frame_video, minlength=self.num_videos)

    def _links_covering(self, score_thresholds: Iterable[float]) -> TemporalLinks:
        """Linkable pairs among every box any of ``score_thresholds`` keeps; the IoU pass is
        redone only when a threshold lower than all previous ones is asked for."""
        lowest = min(score_thresholds)
        if self._links is None or np.any((self._scores > lowest) & ~self._links.candidates):
            self._links = TemporalLinks(
                self.det_boxes,
                self._det_frame,
                self.frame_video,
                self.video_first_frame,
                self._scores > lowest,
            )
        return self._links

    def fp_sequences_per_minute(self, recall: float) -> float:
        """FP_r: false-positive sequences per minute at the score threshold of recall r."""
        threshold = self.score_threshold_at_recall(recall)
        if math.isnan(threshold):
            return math.nan
        sequences = int(self.fp_sequences_per_video(threshold).sum())
        return sequences / self.num_frames * 60.0 * self.fps

    def fp_rate_curve(self, num_points: int = 20) -> Tuple[np.ndarray, np.ndarray]:
        """FP sequences per minute at ``num_points`` recall levels evenly spaced up to the
        highest recall reached (for the FP-vs-recall plot); empty arrays if undefined."""
        curve = self.pr_curve(0.5)
        if self.num_gt == 0 or self.num_dets == 0 or curve.recall[-1] <= 0:
            return np.zeros(0), np.zeros(0)
        recalls = np.linspace(0.0, curve.recall[-1], num_points + 1)[1:]
        self._links_covering([self.score_threshold_at_recall(recalls[-1])])
        return recalls, np.array([self.fp_sequences_per_minute(r) for r in recalls])

    # ----------------------------------------------------------------------------------------
    # reports
    def summary(self) -> Dict[str, float]:
        """Every key of docs/en/metrics.md as a Python float; warns once without ground truth."""
        if self.num_gt == 0:
            warnings.warn(
                "video metrics: the ground truth has no boxes, so AP, Pr, FP and R@16 are NaN",
                RuntimeWarning,
                stacklevel=3,
            )
        ap = {t: self.average_precision(t) for t in IOU_THRESHOLDS}
        results = {
            "AP50": ap[0.5],
            "AP75": ap[0.75],
            "mAP": float(sum(ap.values()) / len(ap)),
        }
        for r in RECALL_LEVELS:
            results[f"Pr{round(r * 100)}"] = self.precision_at_recall(r)
        thresholds = [self.score_threshold_at_recall(r) for r in RECALL_LEVELS]
        defined = [t for t in thresholds if not math.isnan(t)]
        if defined:
            self._links_covering(defined)  # one IoU pass serves every level
        for r in RECALL_LEVELS:
            results[f"FP{round(r * 100)}"] = self.fp_sequences_per_minute(r)
        results["R@16"] = self.recall_at_top_k(TOP_K)
        results["num_videos"] = float(self.num_videos)
        results["num_frames"] = float(self.num_frames)
        results["num_gt"] = float(self.num_gt)
        results["num_dets"] = float(self.num_dets)
        return {key: float(value) for key, value in results.items()}

    def per_video_rows(self, recall: float = 0.8) -> List[Dict[str, object]]:
        """One row per video: frames, GT boxes, detections, R@16, and, at the pooled score
        threshold of recall ``recall``, the video's recall and false-positive sequences. Both use
        the boxes the FP rule keeps (score strictly above the threshold), so with scores tied at
        the threshold the videos' recall can be below ``recall``."""
        matched16, gt_per_video = self.recall_at_top_k_per_video(TOP_K)
        threshold = self.score_threshold_at_recall(recall)
        frames_per_video = self._frames_per_video()
        dets_per_video = np.bincount(self._det_video, minlength=self.num_videos)
        if math.isnan(threshold):
            matched_at_thr = np.full(self.num_videos, np.nan)
            fp_sequences = np.full(self.num_videos, np.nan)
        else:
            kept_tp = self.true_positives(0.5) & (self._scores > threshold)
            matched_at_thr = np.bincount(self._det_video[kept_tp], minlength=self.num_videos)
            fp_sequences = self.fp_sequences_per_video(threshold)
        tag = f"r{round(recall * 100)}"
        rows = []
        for v, video_id in enumerate(self.video_ids):
            gt = int(gt_per_video[v])
            rows.append(
                {
                    "video_id": video_id,
                    "frames": int(frames_per_video[v]),
                    "gt_boxes": gt,
                    "detections": int(dets_per_video[v]),
                    "R@16": float(matched16[v] / gt) if gt else math.nan,
                    f"recall_at_{tag}_threshold": float(matched_at_thr[v] / gt) if gt else math.nan,
                    f"fp_sequences_at_{tag}_threshold": float(fp_sequences[v]),
                }
            )
        return rows

    # ----------------------------------------------------------------------------------------
    # preparation
    def _load(self, predictions, ground_truths) -> None:
        """Concatenate every frame (videos in sorted order, frames in list order)."""
        det_frames: List[np.ndarray] = []
        gt_frames: List[np.ndarray] = []
        frame_video: List[int] = []
        video_first_frame: List[int] = []
        for v, video_id in enumerate(self.video_ids):
            video_dets, video_gts = predictions[video_id], ground_truths[video_id]
            if len(video_dets) != len(video_gts):
                raise ValueError(
                    f"video {video_id!r}: {len(video_dets)} prediction frames but "
                    f"{len(video_gts)} ground-truth frames (each video needs one entry per frame in both)"
                )
            video_first_frame.append(len(frame_video))
            for i, (dets, gts) in enumerate(zip(video_dets, video_gts)):
                det_frames.append(_frame_array(dets, 5, video_id, i, "prediction"))
                gt_frames.append(_frame_array(gts, 4, video_id, i, "ground truth"))
                frame_video.append(v)
        self.frame_video = np.asarray(frame_video, dtype=np.int64)
        self.video_first_frame = np.asarray(video_first_frame, dtype=np.int64)
        det_counts = np.array([len(d) for d in det_frames], dtype=np.int64)
        gt_counts = np.array([len(g) for g in gt_frames], dtype=np.int64)
        dets = np.concatenate(det_frames) if det_frames else np.zeros((0, 5))
        self.det_boxes = np.ascontiguousarray(dets[:, :4])
        self._scores = np.ascontiguousarray(dets[:, 4])
        self.gt_boxes = np.concatenate(gt_frames) if gt_frames else np.zeros((0, 4))
        self._det_frame = np.repeat(np.arange(len(det_counts)), det_counts)
        self._gt_frame = np.repeat(np.arange(len(gt_counts)), gt_counts)
        self._dets_before_frame = np.cumsum(det_counts) - det_counts
        self._gts_before_frame = np.cumsum(gt_counts) - gt_counts
        self._check_finite(dets, self._det_frame, "prediction")
        self._check_finite(self.gt_boxes, self._gt_frame, "ground truth")
        self._det_video = self.frame_video[self._det_frame]
        self._gt_video = self.frame_video[self._gt_frame]

    def _check_finite(self, rows: np.ndarray, row_frame: np.ndarray, kind: str) -> None:
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if len(bad):
            frame = row_frame[bad[0]]
            video = self.frame_video[frame]
            raise ValueError(
                f"video {self.video_ids[video]!r} frame {frame - self.video_first_frame[video]}: "
                f"{kind} row {rows[bad[0]].tolist()} has a non-finite value"
            )

    def _prepare_matching(self) -> None:
        """Threshold-independent facts of every detection, computed once."""
        # Pooled order: descending score, ties keep (video, frame, detection) order.
        self._score_order = np.argsort(-self._scores, kind="stable")
        # Matching order: frame by frame, descending score within a frame, ties in input order.
        by_frame = np.argsort(self._det_frame[self._score_order], kind="stable")
        self._frame_score_order = self._score_order[by_frame]
        self._rank_in_frame = np.empty(self.num_dets, dtype=np.int64)
        self._rank_in_frame[self._frame_score_order] = (
            np.arange(self.num_dets) - self._dets_before_frame[self._det_frame[self._frame_score_order]]
        )
        gt_start = self._gts_before_frame[self._det_frame]
        gt_count = np.bincount(self._gt_frame, minlength=self.num_frames)[self._det_frame]
        self._best_gt_iou, self._best_gt = best_iou_in_group(self.det_boxes, self.gt_boxes, gt_start, gt_count)
        self._centre_in_gt = centre_inside_any_in_group(self.det_boxes, self.gt_boxes, gt_start, gt_count)


def _matching_video_ids(predictions: Mapping, ground_truths: Mapping) -> List[Hashable]:
    """The videos in sorted order; both mappings must cover exactly the same videos."""
    missing_predictions = [v for v in ground_truths if v not in predictions]
    missing_ground_truth = [v for v in predictions if v not in ground_truths]
    if missing_predictions or missing_ground_truth:
        raise ValueError(
            "predictions and ground truth must cover the same videos: "
            f"videos without predictions {missing_predictions[:10]!r}, "
            f"videos without ground truth {missing_ground_truth[:10]!r}"
        )
    return sorted_video_ids(ground_truths)


def sorted_video_ids(video_ids: Iterable[Hashable]) -> List[Hashable]:
    """Video ids in sorted order (docs/en/metrics.md: the order that breaks score ties). Ids of
    mixed types (e.g. ints and strings from different sources) cannot be compared, so they are
    sorted by type name first, then by value within a type."""
    video_ids = list(video_ids)
    try:
        return sorted(video_ids)
    except TypeError:
        return sorted(video_ids, key=lambda v: (type(v).__name__, str(v)))


def _frame_array(rows, width: int, video_id: Hashable, frame: int, kind: str) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, width), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(
            f"video {video_id!r} frame {frame}: {kind} must be an array of shape (K, {width}), got shape {array.shape}"
        )
    return array


def evaluate_video_predictions(
    predictions: Mapping[Hashable, VideoFrames],
    ground_truths: Mapping[Hashable, VideoFrames],
    fps: float = 30.0,
) -> Dict[str, float]:
    """AP50, AP75, mAP, Pr70/80/90, FP70/80/90, R@16 and the counts (docs/en/metrics.md)."""
    return VideoDetectionEvaluation(predictions, ground_truths, fps).summary()
