#!/usr/bin/env python
"""What a model's false alarms on the phantom are: the false-positive sequences that FP80 counts,
each put down to the phantom structure under it.

    python benchmarks/phantom_false_alarms.py --phantom <DATASETS.ROOT>/phantom_v180_f80_s256_seed0_t0.25 \\
        --pred A/inference/phantom_test/predictions.json [B/.../predictions.json ...] [--names A B ...] \\
        [--recall 0.8] [--list]

The phantom is synthetic, so what lies under every box is known: the generator is re-run for each
test video (it is deterministic in the phantom's seed and the video's index, and reads both from
phantom_meta.json and the video's name) to recover the decoys and the lesion slivers too faint or
small to be labelled (docs/en/phantom.md), which the dataset files do not store. A false-positive
sequence (docs/en/metrics.md, at the score threshold of recall ``--recall``) is put down to the cause
of most of its boxes, each box by its centre: a decoy (by kind), an unlabelled lesion sliver, the
rim of a labelled lesion (within 3 px of its box, a poorly placed box), or plain tissue. A sequence
with some boxes on a labelled lesion is "partly on a lesion" (it fails the 90 % rule). This tells a
temporal model's gain from a single-frame model's: decoys are what temporal context is for.
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from usvid.data import load_coco_video_json  # noqa: E402
from usvid.data.phantom.video import plan_video, render_frames, video_rngs  # noqa: E402
from usvid.evaluation import VideoDetectionEvaluation, load_predictions_json  # noqa: E402
from usvid.evaluation.predictions_io import align_with_videos  # noqa: E402

RIM_PX = 3  # a box centre this close outside a labelled lesion's box is a badly placed box on it
CAUSES = ("decoy: fat_lobule", "decoy: vessel", "decoy: shadow", "lesion sliver", "lesion rim", "tissue")


class PhantomScenes:
    """Per frame of a phantom video: its decoy boxes (kind, [x, y, w, h]), the boxes of the lesion
    slivers left unlabelled and of the labelled lesions, regenerated from the phantom's seed the
    first time a video is asked for (rendering is the slow part) and kept for the other models."""

    def __init__(self, phantom_dir: str):
        self.phantom_dir = phantom_dir
        self._meta = json.loads((Path(phantom_dir) / "phantom_meta.json").read_text())
        self._frames = {}

    def __getitem__(self, video_name: str):
        if video_name not in self._frames:
            height, width = self._meta["image_size"]
            category, index = video_name.split("/")[0], int(video_name.rsplit("_", 1)[1])
            plan_rng, render_rng = video_rngs(self._meta["seed"], index)
            plan = plan_video(plan_rng, category, self._meta["frames_per_video"], height, width)
            self._frames[video_name] = [
                {
                    "decoys": [(decoy.kind, decoy.bbox) for decoy in frame.decoys],
                    "slivers": [lesion.bbox for lesion in frame.hidden_lesions],
                    "lesions": [lesion.bbox for lesion in frame.lesions],
                }
                for frame in render_frames(plan, render_rng)
            ]
        return self._frames[video_name]


def _contains(box, x: float, y: float, margin: float = 0.0) -> bool:
    left, top, w, h = box
    return left - margin <= x <= left + w + margin and top - margin <= y <= top + h + margin


def box_cause(frame, x: float, y: float) -> str:
    """The structure under a box centre (x, y) that is not in a labelled lesion."""
    for kind, box in frame["decoys"]:
        if _contains(box, x, y):
            return f"decoy: {kind}"
    if any(_contains(box, x, y) for box in frame["slivers"]):
        return "lesion sliver"
    if any(_contains(box, x, y, RIM_PX) for box in frame["lesions"]):
        return "lesion rim"
    return "tissue"


def false_alarm_sequences(pred_path: str, videos, scenes: PhantomScenes, recall: float):
    """``(score threshold, [(video name, first frame, last frame, boxes, cause), ...])`` of the
    false-positive sequences at ``recall`` (video frames numbered from 0)."""
    _, frame_predictions = load_predictions_json(pred_path)
    predictions, ground_truths = align_with_videos(frame_predictions, videos, scenes.phantom_dir)
    evaluation = VideoDetectionEvaluation(predictions, ground_truths)
    threshold = evaluation.score_threshold_at_recall(recall)
    names = {video["video_id"]: video["video_name"] for video in videos}
    sequences = []
    for video_id, frames in evaluation.false_positive_sequences(threshold).items():
        name = names[video_id]
        for sequence in frames:
            causes = Counter(
                "on lesion" if on_lesion else box_cause(scenes[name][t], *centre) for t, centre, on_lesion in sequence
            )
            off_lesion = Counter({c: n for c, n in causes.items() if c != "on lesion"})
            cause = off_lesion.most_common(1)[0][0]
            if causes["on lesion"]:
                cause = f"partly on a lesion ({cause})"
            frames_of = [t for t, _, _ in sequence]
            sequences.append((name, min(frames_of), max(frames_of), len(sequence), cause))
    return threshold, sequences


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phantom", required=True, help="the phantom's folder (holds test.json, phantom_meta.json)")
    parser.add_argument("--pred", nargs="+", required=True, help="predictions.json files of its phantom_test")
    parser.add_argument("--names", nargs="+", default=None, help="a column name per --pred (default: their folders)")
    parser.add_argument("--recall", type=float, default=0.8, help="operating point (0.8: the one FP80 counts at)")
    parser.add_argument("--list", action="store_true", help="also list every sequence")
    args = parser.parse_args(argv)
    names = args.names or [str(Path(p).parent) for p in args.pred]
    if len(names) != len(args.pred):
        parser.error(f"--names gives {len(names)} names for {len(args.pred)} --pred files")
    videos = load_coco_video_json(os.path.join(args.phantom, "test.json"), args.phantom)
    scenes = PhantomScenes(args.phantom)
    columns = {}
    for name, path in tqdm(list(zip(names, args.pred)), desc="models", unit="model"):
        threshold, sequences = false_alarm_sequences(path, videos, scenes, args.recall)
        columns[name] = Counter(
            cause.split(" (")[0] if cause.startswith("partly") else cause for *_, cause in sequences
        )
        print(f"{name}: score threshold {threshold:.3f} at recall {args.recall}: {len(sequences)} FP sequences")
        if args.list:
            for sequence in sequences:
                print("   ", " | ".join(map(str, sequence)))
    rows = [*CAUSES, "partly on a lesion"]
    print("\n| cause | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for cause in rows:
        print(f"| {cause} | " + " | ".join(str(columns[n][cause]) for n in names) + " |")
    print("| all | " + " | ".join(str(sum(columns[n].values())) for n in names) + " |")


if __name__ == "__main__":
    main()
