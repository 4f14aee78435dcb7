#!/usr/bin/env python
"""Re-evaluate saved predictions (an evaluation's predictions.json) without the model.

    python tools/eval_pred.py --pred OUTPUT/inference/phantom_test/predictions.json \\
        --dataset-json test.json [--image-root ROOT] [--output DIR] [--fps 30]
    python tools/eval_pred.py --pred predictions.json --dataset phantom_test \\
        [--config-file CFG] [KEY VALUE ...]

The ground truth comes from a COCO-video JSON file (``--dataset-json``; frame names relative to
``--image-root``, default the JSON's folder) or from a registered dataset (``--dataset``; the
built-in ones are registered from ``--config-file`` and the trailing overrides, which must
describe the same data as the training run, e.g. its DATASETS.PHANTOM.* values).
Prints the results table and, with ``--output``, writes metrics.json, per_video.csv,
predictions.json and the plots there, exactly as the evaluation after inference does. FPS is NaN:
speed needs the model.
"""

import argparse

from usvid.app import GroundTruthSource, reevaluate_predictions, run_cli
from usvid.utils.logger import setup_logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, help="predictions.json written by an evaluation")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset-json", help="COCO-video JSON file with the ground truth")
    source.add_argument("--dataset", help="name of a registered (e.g. built-in) dataset")
    parser.add_argument("--image-root", default="", help="folder the JSON's frame file names are relative to")
    parser.add_argument("--config-file", default="", help="config for registering the built-in datasets")
    parser.add_argument("--output", default=None, help="folder for metrics.json, per_video.csv and plots")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the videos (FP per minute)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... (after the options)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return reevaluate_predictions(args.pred, GroundTruthSource.from_args(args), args.output, args.fps)


if __name__ == "__main__":
    setup_logger(name="usvid")
    run_cli(main)
