#!/usr/bin/env python
"""Render a test video with ground truth and predictions to an MP4 and a PNG contact sheet.

    python tools/visualize.py \\
        --predictions output/phantom/ultradet/inference/phantom_test/predictions.json \\
        --dataset phantom_test [--config-file configs/phantom/ultradet.yaml] \\
        [--video VIDEO_ID] [--recall 0.8 | --score-threshold 0.3] [--output DIR] [KEY VALUE ...]

or, without a registered dataset, `--dataset-json path/to/test.json --image-root ROOT`.

What the picture shows (so a reader can judge a detector at a glance):
* ground-truth lesion boxes in green;
* the detections kept at the operating point (score above the threshold at which the pooled
  curve reaches `--recall`, the threshold FP80 is measured at), coloured by score (dark purple =
  just above the threshold, yellow = certain) with the score written next to the box;
* detections that belong to a false-positive sequence (docs/en/metrics.md: linked through time,
  not > 90 % on a lesion) drawn thick in red with "FP" — these are the false alarms the operator
  would see;
* a header with the video, the frame index and the threshold.
"""

import argparse
import sys

from usvid.app import GroundTruthSource, render_saved_predictions, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", required=True, help="a predictions.json written by the evaluator")
    parser.add_argument("--dataset", default="", help="registered dataset name (default: the one in the file)")
    parser.add_argument("--dataset-json", default="", help="COCO-video JSON of the dataset instead")
    parser.add_argument("--image-root", default="", help="folder the JSON's file names are relative to")
    parser.add_argument("--config-file", default="", help="config whose DATASETS.* registers built-in datasets")
    parser.add_argument("--video", action="append", default=[], help="video id to render (repeatable)")
    parser.add_argument("--recall", type=float, default=0.8, help="operating point: threshold reaching this recall")
    parser.add_argument("--score-threshold", type=float, default=None, help="fixed threshold instead of --recall")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--output", default="", help="output folder (default: next to the predictions)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    render_saved_predictions(
        args.predictions,
        GroundTruthSource.from_args(args),
        args.output,
        args.video,
        args.recall,
        args.score_threshold,
        args.fps,
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
