"""COCO-style AP of video detections, computed by faster-coco-eval, every frame one image.

Reported next to the video metrics only for comparison with papers that give COCO AP (CVA-Net on
BUV). It is computed by a well-kept COCO implementation (pycocotools' API and protocol) rather
than by our own code, so that the number means exactly what those papers mean.

Where COCO AP and our ``AP50`` (docs/en/metrics.md, VOC protocol) differ:

* **Interpolation**: COCO samples the precision envelope at 101 recall points (0, 0.01, ..., 1)
  and averages them; VOC integrates the envelope exactly (area under the step curve). They agree
  when the envelope is constant over [0, 1] (e.g. a perfect detector, or a false box ranked first
  followed by every lesion box); otherwise they differ by the sampling error, up to about 1/101.
* **Area ranges**: ``COCO/AP`` uses the "all" range; COCO also defines small/medium/large, not
  reported here.
* **maxDets**: COCO keeps at most the 100 highest-scoring detections per image (frame); AP50 uses
  every detection.
* **Crowd regions**: COCO ignores detections matched to ``iscrowd`` boxes; our ground truth has
  none (every box is ``iscrowd = 0``), and docs/en/metrics.md has no ignore regions.
* **Matching**: COCO gives a detection to the best-IoU ground-truth box that is still unmatched
  (it skips taken boxes); VOC takes the best box overall and calls the detection a false
  positive if that box is taken. They differ only when a detection overlaps two lesions by >= t.
* **mAP**: ``COCO/AP`` averages the 10 IoU thresholds 0.50:0.95 like our ``mAP``, with the
  101-point interpolation above.
"""

import math
from typing import Dict, Hashable, List, Mapping, Sequence

import numpy as np

from .video_metrics import sorted_video_ids

__all__ = ["coco_average_precision"]

LESION_CATEGORY_ID = 1


def coco_average_precision(
    predictions: Mapping[Hashable, Sequence[np.ndarray]],
    ground_truths: Mapping[Hashable, Sequence[np.ndarray]],
) -> Dict[str, float]:
    """``{"COCO/AP", "COCO/AP50", "COCO/AP75"}`` as fractions in [0, 1], same inputs as
    :func:`usvid.evaluation.video_metrics.evaluate_video_predictions` (frames of each video,
    ``(K, 5)`` detections and ``(G, 4)`` boxes, absolute XYXY pixels). NaN without ground truth;
    0 with ground truth but no detection (COCO's loader rejects an empty result list)."""
    from faster_coco_eval import COCO, COCOeval_faster

    images, annotations, detections = _coco_records(predictions, ground_truths)
    if not annotations:
        return {"COCO/AP": math.nan, "COCO/AP50": math.nan, "COCO/AP75": math.nan}
    if not detections:
        return {"COCO/AP": 0.0, "COCO/AP50": 0.0, "COCO/AP75": 0.0}
    coco_gt = COCO(
        {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": LESION_CATEGORY_ID, "name": "lesion"}],
        }
    )
    coco_dt = coco_gt.loadRes(detections)
    # The library's 12-line summary would repeat what the results table shows: keep it quiet.
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_quiet)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    ap, ap50, ap75 = (float(value) for value in evaluator.stats[:3])
    return {"COCO/AP": ap, "COCO/AP50": ap50, "COCO/AP75": ap75}


def _quiet(*args, **kwargs) -> None:
    pass


def _coco_records(predictions, ground_truths):
    """COCO images (one per frame, videos in sorted order), annotations and detections (XYWH)."""
    images: List[dict] = []
    annotations: List[dict] = []
    detections: List[dict] = []
    for video_id in sorted_video_ids(ground_truths):
        video_dets, video_gts = predictions[video_id], ground_truths[video_id]
        if len(video_dets) != len(video_gts):
            raise ValueError(
                f"video {video_id!r}: {len(video_dets)} prediction frames but {len(video_gts)} ground-truth frames"
            )
        for frame_dets, frame_gts in zip(video_dets, video_gts):
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{video_id}/{image_id}", "width": 0, "height": 0})
            for x1, y1, x2, y2 in np.asarray(frame_gts, dtype=np.float64).reshape(-1, 4).tolist():
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": LESION_CATEGORY_ID,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
            for x1, y1, x2, y2, score in np.asarray(frame_dets, dtype=np.float64).reshape(-1, 5).tolist():
                detections.append(
                    {
                        "image_id": image_id,
                        "category_id": LESION_CATEGORY_ID,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": score,
                    }
                )
    return images, annotations, detections
