#!/usr/bin/env python
"""Exact resume end to end: tools/train_net.py on configs/phantom/tiny.yaml, stopped by SIGTERM at a
random moment (and, with --kill-9, by SIGKILL) and resumed with --resume, against the same
run left alone.

    python benchmarks/exact_resume.py [--output output/bench/exact_resume] [--stops 2]
        [--num-workers 2] [--num-gpus 1] [--kill-9] [--seed 0]

Both runs use DATALOADER.NUM_WORKERS workers and hard-negative mining (refresh every 10
iterations). The interrupted run is stopped ``--stops`` times, each after a random delay once
its first checkpoint exists, and resumed until it finishes. Prints whether the final weights
are bitwise equal and whether every metrics.json line (wall-clock keys aside) is equal, and
exits non-zero otherwise. Too slow for CI (a few minutes on 2 shared cores); the compact CI
checks are tests/engine_defaults and tests/reliability.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# The shipped smoke-run config (4 phantom videos of 16 frames at 64 px, a narrow model), which
# the tools tests train too; 30 iterations, evaluation, a checkpoint and mining every 10.
CONFIG = "configs/phantom/tiny.yaml"
SCHEDULE = {
    "SOLVER.MAX_ITER": 30,
    "TEST.EVAL_PERIOD": 10,
    "SOLVER.CHECKPOINT_PERIOD": 10,
    "DATALOADER.REFRESH_PERIOD": 10,
}
WALL_CLOCK_KEYS = ("time", "data_time")


def train_net(output_dir, opts, num_gpus, resume=False):
    command = [
        sys.executable,
        os.path.join(REPO, "tools", "train_net.py"),
        "--config-file",
        CONFIG,
        "--num-gpus",
        str(num_gpus),
        *(["--resume"] if resume else []),
        *opts,
        "OUTPUT_DIR",
        output_dir,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=REPO)
    log = open(os.path.join(os.path.dirname(output_dir), os.path.basename(output_dir) + ".log"), "a")
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def training_starts(output_dir):
    """How many runs in ``output_dir`` have begun their training loop (from their log)."""
    with open(output_dir + ".log", errors="replace") as f:
        return f.read().count("Starting training from iteration")


def metrics_lines(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        lines = [json.loads(line) for line in f]
    return [{k: v for k, v in line.items() if k not in WALL_CLOCK_KEYS and not k.endswith("/FPS")} for line in lines]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench", "exact_resume"))
    parser.add_argument("--stops", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--num-gpus", type=int, default=1, help="processes (CPU processes without a GPU)")
    parser.add_argument("--kill-9", action="store_true", help="stop with SIGKILL instead of SIGTERM")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from usvid.config import add_ultrasound_config, get_cfg
    from usvid.data import prepare_phantom

    shutil.rmtree(args.output, ignore_errors=True)
    os.makedirs(args.output)
    datasets = os.path.join(args.output, "datasets")
    opts = [
        str(x)
        for k, v in {"DATASETS.ROOT": datasets, **SCHEDULE, "DATALOADER.NUM_WORKERS": args.num_workers}.items()
        for x in (k, v)
    ]
    cfg = add_ultrasound_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, CONFIG))
    cfg.merge_from_list(opts)
    prepare_phantom(cfg)

    start = time.perf_counter()
    full_dir, stopped_dir = os.path.join(args.output, "full"), os.path.join(args.output, "stopped")
    assert train_net(full_dir, opts, args.num_gpus).wait() == 0, f"see {full_dir}.log"
    full_seconds = time.perf_counter() - start

    rng = random.Random(args.seed)
    stop_signal = signal.SIGKILL if args.kill_9 else signal.SIGTERM
    process, stops = train_net(stopped_dir, opts, args.num_gpus), []
    while True:
        if len(stops) < args.stops:
            # Signal only once this run trains and a checkpoint exists: before its handler is
            # installed a SIGTERM just ends the starting process (nothing to save yet).
            while process.poll() is None and not (
                os.path.exists(os.path.join(stopped_dir, "last_checkpoint"))
                and training_starts(stopped_dir) > len(stops)
            ):
                time.sleep(0.1)
            time.sleep(rng.uniform(0.0, 3.0))
            if process.poll() is None:
                process.send_signal(stop_signal)
                stops.append(process.wait())
                print(f"stop {len(stops)}: {stop_signal.name} -> exit code {stops[-1]}", flush=True)
                process = train_net(stopped_dir, opts, args.num_gpus, resume=True)
                continue
        code = process.wait()
        assert code == 0, f"the resumed run failed (exit code {code}), see {stopped_dir}.log"
        break

    full = torch.load(os.path.join(full_dir, "model_final.pth"), weights_only=False)["model"]
    resumed = torch.load(os.path.join(stopped_dir, "model_final.pth"), weights_only=False)["model"]
    weights_equal = full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)
    full_lines, resumed_lines = metrics_lines(full_dir), metrics_lines(stopped_dir)
    metrics_equal = full_lines == resumed_lines
    print(f"uninterrupted run: {full_seconds:.0f} s; stops: {stops}")
    print(f"final weights bitwise equal: {weights_equal}")
    print(f"metrics.json lines equal ({len(full_lines)} lines): {metrics_equal}")
    if not metrics_equal:
        for a, b in zip(full_lines, resumed_lines):
            if a != b:
                print("first difference:\n  full:    ", a, "\n  resumed: ", b)
                break
        print("iterations:", [line["iteration"] for line in full_lines], [line["iteration"] for line in resumed_lines])
    sys.exit(0 if weights_equal and metrics_equal else 1)


if __name__ == "__main__":
    main()
