#!/usr/bin/env python
"""Check a dataset before training on it: every frame file (zero-byte, corrupt, or a size other
than the annotations give), a summary per video, and a plot of the lesion box sizes and lesions
per frame.

    python tools/check_dataset.py --dataset cva_bus_trainval [--config-file CFG] [KEY VALUE ...]
    python tools/check_dataset.py --dataset-json ROOT/test.json [--image-root ROOT] [--output DIR]

A registered name is looked up after the built-in datasets are registered from ``--config-file``
and the overrides (e.g. DATASETS.ROOT); a JSON file is read with its frames under
``--image-root`` (default: the JSON's folder). Exit code 0: every frame is fine; 1: some frames
have a problem (listed); 2: the dataset itself cannot be read (one ``error:`` line).
"""

import argparse
import os
import sys

from usvid.app import run_cli
from usvid.config import load_ultrasound_config
from usvid.data import load_ground_truth
from usvid.data.check import check_dataset
from usvid.utils.logger import setup_logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="name of a registered (e.g. built-in) dataset")
    source.add_argument("--dataset-json", help="COCO-video JSON file")
    parser.add_argument("--image-root", default="", help="folder the JSON's frame file names are resolved under")
    parser.add_argument("--config-file", default="", help="config for registering the built-in datasets")
    parser.add_argument("--output", default=".", help="folder for the plot <name>_boxes.png (default: here)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... (after the options)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_ultrasound_config(args.config_file, args.opts)
    name, videos = load_ground_truth(cfg, args.dataset or "", args.dataset_json or "", args.image_root)
    report, problems = check_dataset(videos, name, os.path.join(args.output, f"{name}_boxes.png"))
    print(report)
    return 1 if problems else 0


if __name__ == "__main__":
    setup_logger(name="usvid")
    sys.exit(run_cli(main))
