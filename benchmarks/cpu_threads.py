"""CPU speed on a shared machine (issue 16): the thread budget's choices, side by side in one run.

1. Streaming evaluation FPS of the phantom UltraDet (random weights, the 240 frames of a 12-video
   phantom's test set at 256x256), quiet and next to one busy process (a Python loop pinned to
   one CPU), for 1 and 2 intra-op threads (CPU_THREADS) and OpenMP wait policies (unset /
   PASSIVE / ACTIVE; set in the environment of a fresh process, since OpenMP reads it when torch
   loads), and for the automatic budget, whose streaming count follows the other programs' load
   (usvid.utils.thread_governor; the threads column shows the count it ran on, averaged over the
   frames of the quiet and of the busy passes). Target: busy FPS >= 0.5x quiet FPS, quiet FPS not
   below today's (2 threads, unset).
2. ``tools/train_net.py --num-gpus 2`` against one process at the same global batch
   (SOLVER.SEGS_PER_BATCH 2): seconds per iteration and the final evaluation's FPS, with the
   automatic budget and (full run) with every process at one thread per core, as before the
   budget. Target: <= 1.0x the seconds per iteration, >= 0.8x the evaluation FPS.
3. Training steps of the demo config (configs/phantom/ultradet.yaml, DETERMINISTIC True):
   iterations per second as they were before (fp32, torch's per-parameter optimizer step on CPU,
   deterministic mode's NaN fill of new tensors, the automatic budget; also with one thread),
   without those two, and also with ``channels_last`` weights (MODEL.CHANNELS_LAST), bf16
   autocast (SOLVER.AMP), or both; in the
   full run also the first two next to the busy process (is the training thread count right for
   a shared machine?). Target: >= 1.5x the first row. bf16 changes the numerics: the table shows
   the mean relative difference of the total loss from the first row over the same iterations
   (same weights, same batches); the one-thread row shows how much thread count alone moves it.
   Whether bf16 keeps the accuracy needs a full ``make demo`` (the commands are printed).

Every case runs in its own process (benchmarks/cpu_threads_worker.py or tools/train_net.py);
the tables report medians over the repeats: the quiet and busy passes of a streaming case
alternate in its process; training runs are interleaved in rounds so that load changes hit the
cases alike. The first run generates the 12-video phantom under DATASETS.ROOT (not timed).

    .venv/bin/python benchmarks/cpu_threads.py            # estimated 10 minutes on 2 quiet cores
    .venv/bin/python benchmarks/cpu_threads.py --quick    # estimated 3 minutes: fewer cases, repeats
    .venv/bin/python benchmarks/cpu_threads.py --sections streaming steps
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from usvid.config import load_ultrasound_config  # noqa: E402
from usvid.data import register_builtin_datasets  # noqa: E402
from usvid.utils.cpu_budget import plan_thread_budget  # noqa: E402
from usvid.utils.cpu_limits import available_cores  # noqa: E402

CONFIG = os.path.join(REPO, "configs", "phantom", "ultradet.yaml")
WORKER = os.path.join(REPO, "benchmarks", "cpu_threads_worker.py")
TRAIN_NET = os.path.join(REPO, "tools", "train_net.py")
# 12 videos: 3 test videos of 80 frames (240 frames, as in issue 16) and a fast first generation.
COMMON_OPTS = ["DATASETS.PHANTOM.NUM_VIDEOS", "12", "DATASETS.ROOT", os.path.join(REPO, "datasets")]
DEMO_OPTS = ["DETERMINISTIC", "True"]


def run_json(command, env):
    """Run a worker; its last output line is the JSON result."""
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def environment(wait_policy=None):
    """This environment without OMP_NUM_THREADS (the budget decides) and with the wait policy."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(PYTHONPATH=REPO, MPLBACKEND="Agg")
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


def median(values):
    return statistics.median(values) if values else float("nan")


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def worker_command(scratch, mode, flags, opts):
    """The cpu_threads_worker.py command line of ``mode`` ("streaming" or "steps"), writing under
    ``scratch/<mode>``: its ``flags``, then the config overrides (COMMON_OPTS, then ``opts``)."""
    output_dir = os.path.join(scratch, mode)
    return [sys.executable, WORKER, mode, "--output-dir", output_dir, *map(str, flags), *COMMON_OPTS, *opts]


def streaming_section(args, scratch, budget):
    policies = [None, "PASSIVE"] if args.quick else [None, "PASSIVE", "ACTIVE"]
    cases = [(str(threads), policy, ["CPU_THREADS", str(threads)]) for threads in (1, 2) for policy in policies]
    automatic = f"{budget.streaming}-{budget.streaming_quiet} adaptive" if budget.adapts_streaming else budget.streaming
    cases.append((f"{automatic} (automatic)", None, []))
    frames, seconds = (80, 2.5) if args.quick else (240, 5.0)
    rows = []
    for label, policy, opts in cases:  # quiet and busy passes alternate inside each process
        flags = ["--repeats", args.repeats, "--frames", frames, "--max-seconds", seconds]
        result = run_json(worker_command(scratch, "streaming", flags, opts), environment(policy))
        quiet, busy = median(result["quiet"]), median(result["busy"])
        threads = f"{median(result['quiet_threads']):.2f} / {median(result['busy_threads']):.2f}"
        rows.append([label, policy or "unset", threads, f"{quiet:.1f}", f"{busy:.1f}", f"{busy / quiet:.2f}x"])
    headers = ["threads", "OMP_WAIT_POLICY", "threads run quiet / busy", "quiet FPS", "busy FPS", "busy / quiet"]
    return table(headers, rows)


def train_net_run(scratch, name, num_processes, iters, extra_opts):
    """Seconds per iteration and evaluation FPS of one tools/train_net.py run, from its log."""
    output_dir = os.path.join(scratch, name)
    command = [
        sys.executable,
        TRAIN_NET,
        "--config-file",
        CONFIG,
        "--num-gpus",
        str(num_processes),
        *COMMON_OPTS,
        "OUTPUT_DIR",
        output_dir,
        "SOLVER.MAX_ITER",
        str(iters),
        "SOLVER.STEPS",
        "()",
        "SOLVER.WARMUP_ITERS",
        "0",
        "SOLVER.CHECKPOINT_PERIOD",
        "100000",
        "TEST.EVAL_PERIOD",
        str(iters),
        *extra_opts,
    ]
    result = subprocess.run(command, cwd=REPO, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(output_dir, "log.txt"), encoding="utf-8") as f:
        log = f.read()
    speed = re.search(r"Overall training speed: .*\(([\d.]+) s / it\)", log)
    fps = re.findall(r"model speed ([\d.]+) FPS", log)
    if not speed or not fps:
        raise RuntimeError(f"no training speed or inference FPS in {output_dir}/log.txt")
    return float(speed.group(1)), float(fps[-1])


def multiprocess_section(args, scratch, limit):
    cases = [("1 process", 1, []), ("2 processes", 2, [])]
    if not args.quick:
        cases.append(
            (f"2 processes, {limit.cores} threads each (before the budget)", 2, ["CPU_THREADS", str(limit.cores)])
        )
    iters = 10 if args.quick else 20
    runs = {name: [] for name, _, _ in cases}
    for round_index in range(args.rounds):
        for name, processes, opts in cases:
            if opts and round_index > 0:
                continue  # the slow "before" case once: it is there to show the size of the change
            runs[name].append(
                train_net_run(scratch, f"train_{processes}_{len(opts)}_{round_index}", processes, iters, opts)
            )
    single_time = median([t for t, _ in runs["1 process"]])
    single_fps = median([fps for _, fps in runs["1 process"]])
    rows = []
    for name, results in runs.items():
        seconds, fps = median([t for t, _ in results]), median([fps for _, fps in results])
        rows.append([name, f"{seconds:.3f}", f"{seconds / single_time:.2f}x", f"{fps:.1f}", f"{fps / single_fps:.2f}x"])
    return table(["run", "s / iteration", "vs 1 process", "evaluation FPS", "vs 1 process"], rows)


FP32 = ["MODEL.CHANNELS_LAST", "False", "SOLVER.AMP.ENABLED", "False"]
CHANNELS_LAST = ["MODEL.CHANNELS_LAST", "True"]
BF16 = ["SOLVER.AMP.ENABLED", "True", "SOLVER.AMP.PRECISION", "bfloat16"]


def steps_section(args, scratch, budget):
    # One thread against the automatic count: is the room kept (or not) for the loader workers right?
    one_thread = [["CPU_THREADS", "1"]] if budget.training != 1 else []
    before = ["--as-before"]
    options = [("before: fp32", before, FP32)]
    options += [("before, 1 thread", before, FP32 + opts) for opts in one_thread]
    options += [
        ("fp32 (fused optimizer step, no NaN fill)", [], FP32),
        ("channels_last", [], FP32 + CHANNELS_LAST),
        ("bf16 autocast", [], FP32 + BF16),
        ("channels_last + bf16", [], CHANNELS_LAST + BF16),
        ("the demo config as it ships (SOLVER.AMP.PRECISION auto)", [], []),
    ]
    if not args.quick:  # and on a shared machine?
        busy = before + ["--busy"]
        options += [("before, next to a busy process", busy, FP32)]
        options += [("before, 1 thread, next to a busy process", busy, FP32 + opts) for opts in one_thread]
    iters = 8 if args.quick else 30
    runs = {name: [] for name, _, _ in options}
    for _round_index in range(args.rounds):
        for name, flags, opts in options:
            command = worker_command(scratch, "steps", ["--iters", iters, *flags], [*DEMO_OPTS, *opts])
            runs[name].append(run_json(command, environment()))
    base_seconds = median([s for r in runs[options[0][0]] for s in r["seconds"]])
    base_losses = runs[options[0][0]][0]["losses"]
    rows = []
    for name, results in runs.items():
        seconds = median([s for r in results for s in r["seconds"]])
        losses = results[0]["losses"]
        drift = statistics.mean(abs(a - b) / abs(b) for a, b in zip(losses, base_losses))
        rows.append(
            [
                name,
                results[0]["threads"],
                f"{seconds:.3f}",
                f"{1 / seconds:.2f}",
                f"{base_seconds / seconds:.2f}x",
                f"{drift:.1e}",
            ]
        )
    return table(["option", "threads", "s / iteration", "iterations / s", "speed-up", "loss vs fp32 (mean rel.)"], rows)


def machine_description(limit, budget):
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return f"{model or 'CPU'}; {limit.describe()}; automatic budget of one process: {budget.describe()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer cases, repeats and frames (estimated 3 minutes)")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=["streaming", "multiprocess", "steps"],
        default=["streaming", "multiprocess", "steps"],
    )
    parser.add_argument("--output", default=os.path.join(REPO, "output", "benchmarks", "cpu_threads.md"))
    args = parser.parse_args()
    args.repeats, args.rounds = (2, 1) if args.quick else (3, 2)
    cfg = load_ultrasound_config(CONFIG, COMMON_OPTS)
    register_builtin_datasets(cfg)  # generate the phantom once, before anything is timed
    limit = available_cores()
    budget = plan_thread_budget(limit, 1, cfg.DATALOADER.NUM_WORKERS)
    report = [f"Machine: {machine_description(limit, budget)}", ""]
    sections = {
        "streaming": ("Streaming evaluation, quiet and next to one busy process", streaming_section, budget),
        "multiprocess": (
            "tools/train_net.py --num-gpus 2 vs 1 process (same global batch)",
            multiprocess_section,
            limit,
        ),
        "steps": ("Training steps of the demo config", steps_section, budget),
    }
    with tempfile.TemporaryDirectory(prefix="usvid_cpu_threads_") as scratch:
        for key in args.sections:
            title, function, context = sections[key]
            start = time.perf_counter()
            text = function(args, scratch, context)
            report += [f"### {title} ({time.perf_counter() - start:.0f} s)", "", text, ""]
            print("\n".join(report[-4:]), flush=True)
    report.append(
        "Accuracy of the automatic precision (bf16 on a CPU with AVX512-BF16 / AMX): a plain `make demo` "
        'against `make demo DEMO_ARGS="SOLVER.AMP.ENABLED False"` (float32).'
    )
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n".join(report) + "\n")
    print(f"\n{report[0]}\n{report[-1]}\nWritten to {args.output}")


if __name__ == "__main__":
    main()
