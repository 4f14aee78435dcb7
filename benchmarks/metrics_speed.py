#!/usr/bin/env python
"""Speed of the clinical video metrics (usvid.evaluation.video_metrics) on a long test set.

    python benchmarks/metrics_speed.py [--videos 20] [--frames 500] [--max-dets 16] [--repeats 5]

Synthetic but shaped like a detector's output: per video one lesion moving slowly (absent from
every 7th frame), a box on it in 95 % of its frames, 3 persistent decoys that drift (they link
into false-positive sequences) and random clutter, with ``--max-dets`` boxes per frame at most
("dense": exactly that many; "sparse": a uniform 1..max count). Reports wall and CPU time of
``evaluate_video_predictions`` (input parsing included), and the CPU time of its first phase. On
a shared machine the CPU time is the meaningful figure; wall time grows with the load.
"""

import functools
import os
import statistics
import time

import numpy as np
from bench_options import benchmark_parser

from usvid.evaluation.video_metrics import VideoDetectionEvaluation, evaluate_video_predictions


def synthetic_videos(num_videos, num_frames, max_dets, dense, seed=0):
    rng = np.random.default_rng(seed)
    predictions, ground_truths = {}, {}
    for video in range(num_videos):
        lesion_centre = rng.uniform(100, 400, 2)
        decoys = rng.uniform(50, 450, (3, 2))
        frames_pred, frames_gt = [], []
        for frame in range(num_frames):
            lesion_centre += rng.normal(0, 1.5, 2)
            decoys += rng.normal(0, 1.0, decoys.shape)
            lesion = np.r_[lesion_centre - [30, 20], lesion_centre + [30, 20]]
            has_lesion = frame % 7 != 0
            count = max_dets if dense else int(rng.integers(1, max_dets + 1))
            centres = rng.uniform(0, 500, (count, 2))
            sizes = rng.uniform(10, 80, (count, 2))
            rows = np.hstack([centres - sizes / 2, centres + sizes / 2, rng.uniform(0, 0.6, (count, 1))])
            # The first rows: a box on the lesion (95 % of lesion frames), then the decoys.
            special = []
            if has_lesion and rng.random() < 0.95:
                special.append(np.r_[lesion + rng.normal(0, 3, 4), rng.uniform(0.3, 1.0)])
            special += [np.r_[decoy - 15, decoy + 15, rng.uniform(0.2, 0.8)] for decoy in decoys]
            special = np.array(special[:count])
            rows[: len(special)] = special
            frames_pred.append(rows)
            frames_gt.append(lesion[None] if has_lesion else np.zeros((0, 4)))
        predictions[f"video_{video:03d}"] = frames_pred
        ground_truths[f"video_{video:03d}"] = frames_gt
    return predictions, ground_truths


def timed(function, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, statistics.median(walls), statistics.median(cpus)


def main():
    args = benchmark_parser(__doc__, videos=20, frames=500, max_dets=16, repeats=5).parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; numpy {np.__version__}")
    for dense in (True, False):
        predictions, ground_truths = synthetic_videos(args.videos, args.frames, args.max_dets, dense)
        metrics, wall, cpu = timed(
            functools.partial(evaluate_video_predictions, predictions, ground_truths), args.repeats
        )
        _, _, prepare_cpu = timed(functools.partial(VideoDetectionEvaluation, predictions, ground_truths), args.repeats)
        label = "dense " if dense else "sparse"
        print(
            f"{label}: {int(metrics['num_frames'])} frames, {int(metrics['num_dets'])} detections: "
            f"evaluate_video_predictions median {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU "
            f"(of which input parsing + threshold-free matching {1000 * prepare_cpu:.0f} ms CPU) | "
            f"AP50 {metrics['AP50']:.3f} FP80 {metrics['FP80']:.1f} R@16 {metrics['R@16']:.3f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
