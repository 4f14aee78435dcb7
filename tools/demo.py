#!/usr/bin/env python
"""`make demo`: the whole Ultrasound VID flow on a fresh machine, in one command.

1. generate the default synthetic phantom on first use (cached under DATASETS.ROOT);
2. train configs/phantom/ultradet.yaml on phantom_trainval, showing a progress bar;
3. evaluate on phantom_test with streaming inference (metrics.json, predictions.json, plots);
4. render a test video with ground truth and detections (MP4 + PNG contact sheet);
5. print where everything is.

Sized for <= 10 minutes on 2 CPU cores (it trains 1000 of the config's 2000 iterations), with
deterministic kernels (``DETERMINISTIC True``), so a second run on the same machine prints the
same numbers. The full log goes to OUTPUT_DIR/log.txt; the console shows the progress bars,
warnings and the final summary.

    python tools/demo.py [--config-file configs/phantom/ultradet.yaml] [--max-iter N] [KEY VALUE ...]
"""

import argparse

from usvid.app import run_cli, run_demo
from usvid.app.demo import DEMO_MAX_ITER


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="configs/phantom/ultradet.yaml")
    parser.add_argument(
        "--max-iter",
        type=int,
        default=DEMO_MAX_ITER,
        help=f"SOLVER.MAX_ITER, the LR steps scaled alike (default {DEMO_MAX_ITER}: fits 10 minutes on 2 CPU cores; "
        "the config's own schedule is longer)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run_demo(args.config_file, args.opts, args.max_iter)


if __name__ == "__main__":
    run_cli(main)
