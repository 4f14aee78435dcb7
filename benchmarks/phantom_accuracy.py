#!/usr/bin/env python
"""Accuracy on the phantom: UltraDet vs the single-frame FCOS baseline at the same budget.

    python benchmarks/phantom_accuracy.py [--output output/bench/phantom_accuracy] [--second-seed 1]
        [--max-iter N] [--num-threads T]

Trains configs/phantom/ultradet.yaml and configs/phantom/fcos.yaml (same data, schedule and
seed) with tools/train_net.py, evaluates each on phantom_test of the default phantom (seed 0,
the one it trained on) and on phantom_test of a second phantom generated with
``--second-seed`` (new videos, lesions and decoys: a check that the numbers are not specific to
one draw), then prints one Markdown table with every METRICS.md key per model and test set, and
writes it with the raw numbers to OUTPUT/results.json.

Targets (docs/en/metrics.md explains the numbers): UltraDet AP50 >= 0.90, R@16 >= 0.95, and
FP80 at most half of the single-frame baseline's.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"UltraDet": "configs/phantom/ultradet.yaml", "SingleFrameFCOS": "configs/phantom/fcos.yaml"}
KEYS = ("AP50", "AP75", "mAP", "Pr70", "Pr80", "Pr90", "FP70", "FP80", "FP90", "R@16",
        "COCO/AP", "COCO/AP50", "COCO/AP75", "FPS", "num_videos", "num_frames", "num_gt", "num_dets")


def run_train_net(*args, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPLBACKEND="Agg")
    command = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), *map(str, args)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def test_metrics(output_dir):
    with open(os.path.join(output_dir, "inference", "phantom_test", "metrics.json")) as f:
        return json.load(f)["lesion_detection"]


def markdown_table(rows):
    def cell(value):
        return "nan" if value != value else (f"{value:.0f}" if value >= 100 else f"{value:.3f}")

    lines = ["| model | test set | " + " | ".join(KEYS) + " |", "|" + " --- |" * (len(KEYS) + 2)]
    for (model, test_set), metrics in rows.items():
        lines.append(f"| {model} | {test_set} | " + " | ".join(cell(metrics[k]) for k in KEYS) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/bench/phantom_accuracy")
    parser.add_argument("--second-seed", type=int, default=1)
    parser.add_argument("--max-iter", type=int, default=None, help="override SOLVER.MAX_ITER of both configs")
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args()
    budget = [] if args.max_iter is None else ["SOLVER.MAX_ITER", args.max_iter]
    rows, seconds = {}, {}
    for model, config in MODELS.items():
        train_dir = os.path.join(args.output, model)
        start = time.perf_counter()
        run_train_net("--config-file", config, "OUTPUT_DIR", train_dir, *budget, threads=args.num_threads)
        seconds[model] = time.perf_counter() - start
        rows[(model, "phantom_test (seed 0)")] = test_metrics(train_dir)
        second_dir = os.path.join(train_dir, f"eval_seed{args.second_seed}")
        run_train_net("--config-file", config, "--eval-only", "MODEL.WEIGHTS",
                      os.path.join(train_dir, "model_final.pth"), "DATASETS.PHANTOM.SEED", args.second_seed,
                      "OUTPUT_DIR", second_dir, threads=args.num_threads)
        rows[(model, f"phantom_test (seed {args.second_seed})")] = test_metrics(second_dir)
    table = markdown_table(rows)
    print(table)
    for model, secs in seconds.items():
        print(f"{model}: trained and evaluated in {secs / 60:.1f} min")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"rows": [{"model": m, "test_set": t, **v} for (m, t), v in rows.items()],
                   "train_minutes": {m: s / 60 for m, s in seconds.items()}, "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
