#!/usr/bin/env python
"""R@16 by lesion size, for one or several models' saved predictions, and for their union.

    python benchmarks/recall_by_size.py --dataset-json <phantom folder>/test.json \\
        --pred A/inference/phantom_test/predictions.json [B/.../predictions.json ...] \\
        [--names A B ...] [--plot recall_by_size.png]

Each ground-truth box is counted as found by a model exactly as R@16 counts it (docs/en/metrics.md:
matched at IoU 0.5 by one of the 16 best detections of its frame). Boxes are bucketed by the
square root of their area in the original frame's pixels. The last column counts a box found
when ANY of the models finds it: an empirical ceiling for R@16 with these models. It shows which
lesions no model finds at all, as opposed to lesions that one model misses.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from usvid.data import load_coco_video_json  # noqa: E402
from usvid.evaluation import VideoDetectionEvaluation, load_predictions_json  # noqa: E402
from usvid.evaluation.predictions_io import align_with_videos  # noqa: E402

SIZE_EDGES = (0, 16, 24, 32, 48, 64, float("inf"))


def found_flags(pred_path: str, videos, dataset_name: str):
    """(per-GT-box found flags, the GT boxes [G, 4] in the same order) for one predictions.json."""
    _, frame_predictions = load_predictions_json(pred_path)
    predictions, ground_truths = align_with_videos(frame_predictions, videos, dataset_name)
    evaluation = VideoDetectionEvaluation(predictions, ground_truths)
    return evaluation.gt_matched_at_top_k(), evaluation.gt_boxes


def size_label(low: float, high: float) -> str:
    return f">= {low:g} px" if high == float("inf") else f"{low:g}-{high:g} px"


def recall_table(found: dict, sizes: np.ndarray):
    """Rows ``(label, count, [recall per model..., union])``, the last row over all boxes."""
    columns = list(found.values()) + [np.any(list(found.values()), axis=0)]
    rows = []
    for low, high in zip(SIZE_EDGES[:-1], SIZE_EDGES[1:]):
        in_bucket = (sizes >= low) & (sizes < high)
        if in_bucket.any():
            rows.append((size_label(low, high), int(in_bucket.sum()), [float(c[in_bucket].mean()) for c in columns]))
    rows.append(("all", len(sizes), [float(c.mean()) for c in columns]))
    return rows


def plot(rows, names, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{label}\n(n={count})" for label, count, _ in rows]
    width = 0.8 / (len(names) + 1)
    fig, axes = plt.subplots(figsize=(1.6 * len(rows) + 2, 4))
    for i, name in enumerate(names + ["any model"]):
        axes.bar(np.arange(len(rows)) + (i - len(names) / 2) * width, [r[2][i] for r in rows], width, label=name)
    axes.set_xticks(np.arange(len(rows)), labels)
    axes.set_ylabel("R@16 (share of GT boxes found)")
    axes.set_ylim(0, 1.05)
    axes.set_title("Recall at 16 detections per frame, by lesion size (sqrt of box area)")
    axes.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-json", required=True, help="COCO-video JSON with the ground truth")
    parser.add_argument(
        "--image-root", default=None, help="folder its frame names are relative to (default: its folder)"
    )
    parser.add_argument("--pred", nargs="+", required=True, help="predictions.json files written by evaluations")
    parser.add_argument("--names", nargs="+", default=None, help="a column name per --pred (default: their folders)")
    parser.add_argument("--plot", default=None, help="also draw the table as a bar chart into this PNG")
    args = parser.parse_args(argv)
    names = args.names or [str(Path(p).parent) for p in args.pred]
    if len(names) != len(args.pred):
        parser.error(f"--names gives {len(names)} names for {len(args.pred)} --pred files")
    image_root = args.image_root or os.path.dirname(os.path.abspath(args.dataset_json))
    videos = load_coco_video_json(args.dataset_json, image_root)

    if len(set(names)) != len(names):
        parser.error(f"--names must be distinct, got {names}")
    found, gt_boxes = {}, None
    for name, path in zip(names, args.pred):
        found[name], boxes = found_flags(path, videos, args.dataset_json)
        # The union compares box i of every model: all must cover the same videos.
        if gt_boxes is not None and not np.array_equal(boxes, gt_boxes):
            raise SystemExit(
                f"{path} covers other videos than {args.pred[0]} ({len(boxes)} vs {len(gt_boxes)} "
                "GT boxes); give predictions of the same test set"
            )
        gt_boxes = boxes
    sizes = np.sqrt((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]))
    rows = recall_table(found, sizes)
    print("| GT box size | boxes | " + " | ".join(names) + " | any model |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for label, count, recalls in rows:
        print(f"| {label} | {count} | " + " | ".join(f"{r:.3f}" for r in recalls) + " |")
    if args.plot:
        plot(rows, names, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
