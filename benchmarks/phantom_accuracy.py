#!/usr/bin/env python
"""Accuracy on the phantom: UltraDet vs the single-frame FCOS baseline at the same budget.

    python benchmarks/phantom_accuracy.py [--output output/bench/phantom_accuracy] [--second-seed 1]
        [--max-iter N] [--num-threads T] [--parallel] [--skip-training] [KEY VALUE ...]

Trains configs/phantom/ultradet.yaml and configs/phantom/fcos.yaml (same data, schedule and
seed) with tools/train_net.py, evaluates each on phantom_test of the default phantom (seed 0,
the one it trained on) and on phantom_test of a second phantom generated with
``--second-seed`` (new videos, lesions and decoys: a check that the numbers are not specific to
one draw), then prints one Markdown table with every docs/en/metrics.md key per model and test set, and
writes it with the raw numbers to OUTPUT/results.json.

Targets (docs/en/metrics.md explains the numbers), on each test set: UltraDet AP50 >= 0.90 and
R@16 >= 0.95, UltraDet's AP50 above the single-frame baseline's and its FP80 at most half of the
baseline's. The last lines printed say which are met. The phantoms are generated before the jobs
start (two jobs started side by side would otherwise both write the same cache folder).
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"UltraDet": "configs/phantom/ultradet.yaml", "SingleFrameFCOS": "configs/phantom/fcos.yaml"}
KEYS = (
    "AP50",
    "AP75",
    "mAP",
    "Pr70",
    "Pr80",
    "Pr90",
    "FP70",
    "FP80",
    "FP90",
    "R@16",
    "COCO/AP",
    "COCO/AP50",
    "COCO/AP75",
    "FPS",
    "num_videos",
    "num_frames",
    "num_gt",
    "num_dets",
)


def prepare_phantoms(seeds, opts):
    """Generate (or find cached) the phantom of each seed, as the jobs' configs name it."""
    sys.path.insert(0, REPO)
    from usvid.config import load_ultrasound_config
    from usvid.data import prepare_phantom

    for seed in seeds:
        prepare_phantom(
            load_ultrasound_config(MODELS["UltraDet"], [*map(str, opts), "DATASETS.PHANTOM.SEED", str(seed)])
        )


def target_checks(rows):
    """(test set, target, UltraDet's value, met) for every target of the module docstring."""
    checks = []
    for model, test_set in rows:
        if model != "UltraDet":
            continue
        ours, baseline = rows[("UltraDet", test_set)], rows[("SingleFrameFCOS", test_set)]
        checks += [
            (test_set, "AP50 >= 0.90", ours["AP50"], ours["AP50"] >= 0.90),
            (test_set, "R@16 >= 0.95", ours["R@16"], ours["R@16"] >= 0.95),
            (test_set, f"AP50 > baseline's {baseline['AP50']:.3f}", ours["AP50"], ours["AP50"] > baseline["AP50"]),
            (
                test_set,
                f"FP80 <= half the baseline's {baseline['FP80']:.1f}",
                ours["FP80"],
                ours["FP80"] <= 0.5 * baseline["FP80"],
            ),
        ]
    return checks


def run_train_net_jobs(jobs, threads, parallel):
    """Run tools/train_net.py once per argument list in ``jobs``: one after the other, or all at
    once with ``parallel`` (each with ``threads`` threads; e.g. 2 jobs x 1 thread on 2 cores)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPLBACKEND="Agg")
    commands = [[sys.executable, os.path.join(REPO, "tools", "train_net.py"), *map(str, args)] for args in jobs]
    for command in commands:
        print("$", " ".join(command), flush=True)
    if parallel:
        processes = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.DEVNULL) for c in commands]
        codes = [p.wait() for p in processes]
    else:
        codes = [subprocess.run(c, cwd=REPO, env=env, stdout=subprocess.DEVNULL).returncode for c in commands]
    if any(codes):
        raise RuntimeError(f"train_net.py failed (exit codes {codes}); see the log.txt of each OUTPUT_DIR")


def test_metrics(output_dir):
    with open(os.path.join(output_dir, "inference", "phantom_test", "metrics.json")) as f:
        return json.load(f)["lesion_detection"]


def markdown_table(rows):
    def cell(key, value):
        if value != value:
            return "nan"
        if key.startswith("num_"):
            return f"{value:.0f}"
        return f"{value:.1f}" if key.startswith(("FP", "FPS")) else f"{value:.3f}"

    lines = ["| model | test set | " + " | ".join(KEYS) + " |", "|" + " --- |" * (len(KEYS) + 2)]
    for (model, test_set), metrics in rows.items():
        lines.append(f"| {model} | {test_set} | " + " | ".join(cell(k, metrics[k]) for k in KEYS) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/bench/phantom_accuracy")
    parser.add_argument("--second-seed", type=int, default=1)
    parser.add_argument(
        "--max-iter", type=int, default=None, help="override SOLVER.MAX_ITER of both configs (LR steps scaled alike)"
    )
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--parallel", action="store_true", help="train / evaluate the two models at once")
    parser.add_argument(
        "--skip-training",
        action="store_true",
        help="evaluate the model_final.pth already in OUTPUT on both test sets (after an "
        "inference-side change, e.g. MODEL.ROI_HEADS.FUSE_PROPOSAL_SCORE True)",
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        help="config overrides KEY VALUE ... applied to both models (e.g. MODEL.FCOS.IN_FEATURE res4)",
    )
    args = parser.parse_args()
    # --max-iter keeps the configs' shape of schedule: one LR step at 80 % (theirs: 3200 of 4000).
    budget = (
        []
        if args.max_iter is None
        else ["SOLVER.MAX_ITER", args.max_iter, "SOLVER.STEPS", f"({int(args.max_iter * 0.8)},)"]
    )
    train_dirs = {model: os.path.join(args.output, model) for model in MODELS}
    second_dirs = {model: os.path.join(train_dirs[model], f"eval_seed{args.second_seed}") for model in MODELS}
    prepare_phantoms((0, args.second_seed), args.opts)
    start = time.perf_counter()
    evaluations = {f"eval_seed{args.second_seed}": args.second_seed}
    if args.skip_training:
        evaluations = {"eval_seed0": 0, **evaluations}
        train_dirs_used = {m: os.path.join(train_dirs[m], "eval_seed0") for m in MODELS}
    else:
        run_train_net_jobs(
            [["--config-file", MODELS[m], "OUTPUT_DIR", train_dirs[m], *budget, *args.opts] for m in MODELS],
            args.num_threads,
            args.parallel,
        )
        train_dirs_used = train_dirs
    train_minutes = (time.perf_counter() - start) / 60
    for folder, seed in evaluations.items():
        run_train_net_jobs(
            [
                [
                    "--config-file",
                    MODELS[m],
                    "--eval-only",
                    "MODEL.WEIGHTS",
                    os.path.join(train_dirs[m], "model_final.pth"),
                    "DATASETS.PHANTOM.SEED",
                    seed,
                    *args.opts,
                    "OUTPUT_DIR",
                    os.path.join(train_dirs[m], folder),
                ]
                for m in MODELS
            ],
            args.num_threads,
            args.parallel,
        )
    rows = {}
    for model in MODELS:
        rows[(model, "phantom_test (seed 0)")] = test_metrics(train_dirs_used[model])
        rows[(model, f"phantom_test (seed {args.second_seed})")] = test_metrics(second_dirs[model])
    table = markdown_table(rows)
    print(table)
    if not args.skip_training:
        print(f"training + evaluation on seed 0: {train_minutes:.1f} min", end="; ")
    print(f"total {(time.perf_counter() - start) / 60:.1f} min")
    checks = target_checks(rows)
    for test_set, target, value, met in checks:
        print(f"{test_set}: UltraDet {target}: {value:.3f} {'met' if met else 'MISSED'}")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(
            {
                "rows": [{"model": m, "test_set": t, **v} for (m, t), v in rows.items()],
                "train_minutes": train_minutes,
                "skip_training": args.skip_training,
                "budget": budget,
                "opts": args.opts,
                "table": table,
                "targets": [dict(test_set=t, target=n, value=v, met=bool(ok)) for t, n, v, ok in checks],
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
