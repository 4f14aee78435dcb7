#!/usr/bin/env python
"""Where a trained UltraDet loses recall: its proposals or its RoI head.

    python benchmarks/ultradet_candidates.py --weights output/.../model_final.pth
        [--config configs/phantom/ultradet.yaml] [--dataset phantom_test] [KEY VALUE ...]

Runs the model over every video of the test set (one clip per video, the same function as
streaming) and, for each ground-truth box, looks at the K candidates of its frame:

* proposal recall: a proposal reaches IoU >= 0.5 with the box (before the RoI head), overall and
  by box size (sqrt of the area, in input pixels: < 16, 16-32, >= 32);
* the RoI head's lesion score of the candidate whose refined box overlaps the box best (median,
  and the share below 0.1): low scores there are lesions found by the proposals and then ranked
  away by the head;
* AP50 / AP75 / R@16 / FP80 of four rankings of the same candidates (NMS 0.5, 16 per frame, no
  score threshold): the head's scores with its refined boxes (the model's own output), the
  proposal scores with the unrefined proposals, and the geometric mean of the two scores with
  the unrefined and with the refined boxes.

benchmarks/RESULTS.md ("UltraDet candidates") quotes these numbers for the 3000-iteration models.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from usvid.checkpoint import Checkpointer  # noqa: E402
from usvid.config import load_ultrasound_config  # noqa: E402
from usvid.data import build_video_detection_test_loader, register_builtin_datasets  # noqa: E402
from usvid.evaluation import evaluate_video_predictions  # noqa: E402
from usvid.layers import nms  # noqa: E402
from usvid.modeling import build_model  # noqa: E402
from usvid.structures import Boxes, pairwise_iou  # noqa: E402
from usvid.structures.box_ops import clip_boxes  # noqa: E402

SIZE_BUCKETS = ((0, 16), (16, 32), (32, float("inf")))


def videos_of(cfg, dataset):
    """{video_id: [frame dicts in order]} from the streaming test loader."""
    videos = {}
    for batch in build_video_detection_test_loader(cfg, dataset):
        for frame in batch:
            videos.setdefault(frame["video_id"], []).append(frame)
    return videos


def clip_candidates(model, frames):
    """Per frame: GT boxes, proposals, proposal scores, refined boxes and lesion scores."""
    images = model.normalize_frames(frames)
    size = tuple(images.shape[-2:])
    features, _ = model._features(images)
    _, proposals, proposal_scores = model._proposals(features, size)
    logits, deltas = model.roi_heads.forward_clip(features[model.roi_feature], proposals)
    for t, gt in enumerate(model.gt_boxes_of(frames)):
        refined = clip_boxes(model.roi_heads.box2box.apply_deltas(deltas[t], proposals[t]), *size)
        yield gt, proposals[t], proposal_scores[t], refined, F.softmax(logits[t], dim=-1)[:, 0]


def ranked(boxes, scores):
    keep = nms(boxes, scores, 0.5)[:16]
    return np.concatenate([boxes[keep].numpy(), scores[keep, None].numpy()], axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--config", default=str(REPO / "configs/phantom/ultradet.yaml"))
    parser.add_argument("--dataset", default="phantom_test")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args()
    cfg = load_ultrasound_config(args.config, ["MODEL.DEVICE", "cpu", *args.opts])
    register_builtin_datasets(cfg)
    model = build_model(cfg).eval()
    Checkpointer(model).load(args.weights)

    proposal_iou, refined_iou, best_score, sizes = [], [], [], []
    rankings = {
        "head scores, refined boxes": {},
        "proposal scores, proposals": {},
        "geometric mean, proposals": {},
        "geometric mean, refined boxes": {},
    }
    ground_truth = {}
    with torch.no_grad():
        for video_id, frames in videos_of(cfg, args.dataset).items():
            for ranking in rankings.values():
                ranking[video_id] = []
            ground_truth[video_id] = []
            for gt, proposals, proposal_scores, refined, scores in clip_candidates(model, frames):
                ground_truth[video_id].append(gt.numpy())
                rankings["head scores, refined boxes"][video_id].append(ranked(refined, scores))
                rankings["proposal scores, proposals"][video_id].append(ranked(proposals, proposal_scores))
                rankings["geometric mean, proposals"][video_id].append(
                    ranked(proposals, (scores * proposal_scores).sqrt())
                )
                rankings["geometric mean, refined boxes"][video_id].append(
                    ranked(refined, (scores * proposal_scores).sqrt())
                )
                if not gt.numel():
                    continue
                refined_overlap = pairwise_iou(Boxes(gt), Boxes(refined))
                proposal_iou += pairwise_iou(Boxes(gt), Boxes(proposals)).max(dim=1).values.tolist()
                refined_iou += refined_overlap.max(dim=1).values.tolist()
                best_score += scores[refined_overlap.argmax(dim=1)].tolist()
                sizes += ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).sqrt().tolist()

    proposal_iou, refined_iou, best_score, sizes = map(np.asarray, (proposal_iou, refined_iou, best_score, sizes))
    print(f"{len(sizes)} GT boxes in {args.dataset}")
    print(
        "| boxes | count | proposal IoU>=0.5 | refined IoU>=0.5 | refined IoU>=0.75 "
        "| median lesion score | score < 0.1 |"
    )
    print("|---|---|---|---|---|---|---|")
    buckets = [("all", np.ones_like(sizes, dtype=bool))] + [
        (f"{low}-{high} px" if high != float("inf") else f">= {low} px", (sizes >= low) & (sizes < high))
        for low, high in SIZE_BUCKETS
    ]
    for name, mask in buckets:
        print(
            f"| {name} | {mask.sum()} | {(proposal_iou[mask] >= 0.5).mean():.3f} "
            f"| {(refined_iou[mask] >= 0.5).mean():.3f} | {(refined_iou[mask] >= 0.75).mean():.3f} "
            f"| {np.median(best_score[mask]):.3f} | {(best_score[mask] < 0.1).mean():.3f} |"
        )
    print("\n| ranking (NMS 0.5, 16 per frame, no threshold) | AP50 | AP75 | R@16 | FP80 |")
    print("|---|---|---|---|---|")
    for name, predictions in rankings.items():
        metrics = evaluate_video_predictions(predictions, ground_truth)
        print(
            f"| {name} | {metrics['AP50']:.3f} | {metrics['AP75']:.3f} | {metrics['R@16']:.3f} "
            f"| {metrics['FP80']:.1f} |"
        )


if __name__ == "__main__":
    main()
