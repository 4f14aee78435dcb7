#!/usr/bin/env python
"""Run a trained detector on any ultrasound video: detections drawn into an MP4, and every box
in a predictions.json.

    python tools/predict.py --config-file CFG --weights W --input PATH [--input PATH2 ...] [--output DIR]
           [--score-threshold S | --operating-point RUN_DIR] [--crop auto|none] [--fps F] [KEY VALUE ...]

PATH: a video file PyAV decodes (MP4, AVI, MOV, MKV...), a folder of frames (sorted by name), a
DICOM file (single- or multi-frame cine; FrameTime / CineRate give the frame rate), or a folder
of such video / DICOM files. For each input <name> (its file name without extension, or the
folder's name) it writes DIR/<name>_detections.mp4 and DIR/<name>_predictions.json (default DIR:
predictions/). The drawing shows the boxes scoring above S, or above the threshold at which the
evaluation of RUN_DIR reached recall 0.8 (where its FP80 was measured), default 0.5; the JSON
holds every box. --crop auto runs the model on the moving image region only (scanner UI
around it stays out) and maps the boxes back to the full frame. --fps F is the frame rate of the
drawn MP4 for inputs that carry none (frame folders, DICOM without FrameTime / CineRate; default
30); video files and DICOM files that state a rate keep theirs. Bad input: one `error:` line,
exit code 2, no partial output.
"""

import argparse

from usvid.app import predict_inputs, run_cli
from usvid.config import load_ultrasound_config
from usvid.data.video_input import list_inputs
from usvid.utils.logger import setup_logger


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the config the weights were trained with")
    parser.add_argument("--weights", required=True, help="trained weights, e.g. OUTPUT_DIR/model_final.pth")
    parser.add_argument(
        "--input",
        required=True,
        action="append",
        help="a video file, frame folder, DICOM file or folder of those (repeatable)",
    )
    parser.add_argument("--output", default="predictions", help="output folder (default: predictions/)")
    threshold = parser.add_mutually_exclusive_group()
    threshold.add_argument("--score-threshold", type=float, default=None, help="draw boxes scoring above this")
    threshold.add_argument(
        "--operating-point",
        default="",
        metavar="RUN_DIR",
        help="draw at the score threshold where RUN_DIR's evaluation reached recall 0.8",
    )
    parser.add_argument(
        "--crop", choices=("auto", "none"), default="none", help="auto: detect on the imaging region only"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frame rate of frame folders and of DICOM files stating none"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ... (after the options)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_ultrasound_config(args.config_file, args.opts)
    inputs = [path for given in args.input for path in list_inputs(given)]
    return predict_inputs(
        cfg, args.weights, inputs, args.output, args.score_threshold, args.operating_point, args.crop, args.fps
    )


if __name__ == "__main__":
    setup_logger(name="usvid")
    run_cli(main)
