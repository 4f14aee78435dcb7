"""CLI: python -m usvid.data.phantom --out datasets/phantom [--num-videos 60 --frames 80
--size 256 --seed 0 --test-fraction 0.25 --workers N]"""

from __future__ import annotations

import argparse
import json
import sys

from .dataset import generate_phantom_dataset


def _image_size(text: str):
    """ "256" -> 256; "256x320" (height x width) -> (256, 320)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be N or HxW (e.g. 256 or 256x320), got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise argparse.ArgumentTypeError(f"--size must be N or HxW, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m usvid.data.phantom",
        description="Generate the synthetic breast-ultrasound video dataset (CVA-BUS layout).",
    )
    parser.add_argument("--out", required=True, help="dataset root folder to create")
    parser.add_argument("--num-videos", type=int, default=60)
    parser.add_argument("--frames", type=int, default=80, help="frames per video (30 fps)")
    parser.add_argument("--size", type=_image_size, default=256, help="N or HxW pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: min(2, cpu count))")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = generate_phantom_dataset(
            args.out,
            num_videos=args.num_videos,
            frames_per_video=args.frames,
            image_size=args.size,
            seed=args.seed,
            test_fraction=args.test_fraction,
            num_workers=args.workers,
            progress=not args.quiet,
        )
    except (ValueError, FileExistsError, NotADirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
