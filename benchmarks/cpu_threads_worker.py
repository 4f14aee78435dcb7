"""One measurement of benchmarks/cpu_threads.py, run in a fresh interpreter so that the
environment it was started with (OMP_WAIT_POLICY, OMP_NUM_THREADS) is what OpenMP reads when
torch loads. Prints one JSON line (the last line of its output) with the measured values.

    python benchmarks/cpu_threads_worker.py streaming --output-dir DIR --repeats 3 --frames 240
        --max-seconds 5 [KEY VALUE ...]
    python benchmarks/cpu_threads_worker.py steps --output-dir DIR --iters 30
        [--as-before] [--busy] [KEY VALUE ...]

Both set up the run with default_setup (so the thread budget, CPU_THREADS included, applies
exactly as in tools/train_net.py) and build the model with a fixed seed (random weights).
``streaming`` runs the evaluation's streaming inference over the phantom_test frames, each
repeat once on a quiet machine and once next to a busy process (a Python loop pinned to the
last usable CPU), and reports the model-time FPS of both and the intra-op threads the model ran
on, averaged over the frames of each pass (the automatic budget's count follows the load).
``steps`` runs the engine's training step as tools/train_net.py builds it (SimpleTrainer, or
AMPTrainer with SOLVER.AMP; the optimizer of build_optimizer; MODEL.CHANNELS_LAST in
build_model) with the LR schedule, on a quiet machine or next to the busy process, and reports
the seconds and total loss of each step after a warm-up. ``--as-before`` steps as usvid did
before this benchmark's changes: torch's CPU default optimizer step (one small update per
parameter tensor) instead of the fused one, and deterministic mode filling every new tensor
with NaN (torch's default, which default_setup now turns off).
"""

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.utils.deterministic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from usvid.config import load_ultrasound_config  # noqa: E402
from usvid.data import (  # noqa: E402
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    register_builtin_datasets,
)
from usvid.engine import AMPTrainer, HookBase, SimpleTrainer, autocast_precision, default_setup, hooks  # noqa: E402
from usvid.evaluation import inference_on_video_dataset  # noqa: E402
from usvid.evaluation.inference import WARMUP_FRAMES  # noqa: E402
from usvid.modeling import build_model  # noqa: E402
from usvid.solver import build_lr_scheduler, build_optimizer, get_clip_grad_norm  # noqa: E402

WARMUP_STEPS = 3
MIN_TIMED_FRAMES = 10
# The busy process: pinned to one CPU, and killed with its parent (prctl PR_SET_PDEATHSIG) so a
# benchmark that dies never leaves a core spinning on a shared machine.
SPINNER = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)
os.sched_setaffinity(0, {int(sys.argv[1])})
while True:
    pass
"""


def setup(args):
    cfg = load_ultrasound_config(args.config_file, args.opts)
    cfg.OUTPUT_DIR = args.output_dir
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    default_setup(cfg, argparse.Namespace(config_file=args.config_file, eval_only=args.mode == "streaming"))
    register_builtin_datasets(cfg)
    torch.manual_seed(0)
    return cfg, build_model(cfg)


class BusyProcess:
    """A process that keeps one CPU busy (pinned to the last CPU this process may use) while the
    block runs: the 'other program' of a shared workstation."""

    def __enter__(self):
        cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        self.process = subprocess.Popen([sys.executable, "-c", SPINNER, str(cpu)])
        time.sleep(0.3)  # running, and the scheduler has seen it
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


class FpsOnly:
    """An evaluator that only keeps the FPS inference_on_video_dataset measured."""

    def reset(self):
        self.fps = float("nan")

    def process(self, inputs, outputs):
        pass

    def set_inference_fps(self, fps):
        self.fps = fps

    def evaluate(self):
        return {}


def capped(loader, frames, seconds):
    """The loader's first ``frames`` batches, fewer if ``seconds`` run out first (a slow case
    then still reports its FPS over the frames it managed), but always MIN_TIMED_FRAMES timed
    ones after the frames the FPS leaves out."""
    deadline = time.perf_counter() + seconds
    for index, batch in enumerate(itertools.islice(loader, frames)):
        yield batch
        if time.perf_counter() > deadline and index >= WARMUP_FRAMES + MIN_TIMED_FRAMES:
            return


def streaming(args):
    cfg, model = setup(args)
    loader = build_video_detection_test_loader(cfg, cfg.DATASETS.TEST[0])
    evaluator = FpsOnly()
    frame_threads = []
    model.register_forward_pre_hook(lambda module, inputs: frame_threads.append(torch.get_num_threads()))

    def fps_and_threads():
        frame_threads.clear()
        inference_on_video_dataset(model, capped(loader, args.frames, args.max_seconds), evaluator)
        return evaluator.fps, statistics.mean(frame_threads)

    fps_and_threads()  # warm-up: allocator, lazy initialisation, page cache
    quiet, busy = [], []
    for _ in range(args.repeats):
        quiet.append(fps_and_threads())
        with BusyProcess():
            busy.append(fps_and_threads())
    return {
        "quiet": [fps for fps, _ in quiet],
        "busy": [fps for fps, _ in busy],
        "quiet_threads": [threads for _, threads in quiet],
        "busy_threads": [threads for _, threads in busy],
        "threads": torch.get_num_threads(),
    }


class StepRecorder(HookBase):
    """Seconds and total loss of every step after the warm-up."""

    def __init__(self):
        self.seconds, self.losses = [], []

    def before_step(self):
        self.start = time.perf_counter()

    def after_step(self):
        if self.trainer.iter >= WARMUP_STEPS:
            self.seconds.append(time.perf_counter() - self.start)
            self.losses.append(self.trainer.storage.history("total_loss").latest())


def steps(args):
    cfg, model = setup(args)
    optimizer = build_optimizer(cfg, model)
    if args.as_before:
        optimizer = type(optimizer)([{**group, "fused": None} for group in optimizer.param_groups])
        torch.utils.deterministic.fill_uninitialized_memory = True
    loader = build_video_detection_train_loader(cfg)
    clip = get_clip_grad_norm(cfg)
    precision, _ = autocast_precision(cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.PRECISION, "cpu")
    if precision is not None:
        trainer = AMPTrainer(model, loader, optimizer, precision=precision, clip_grad_norm=clip)
    else:
        trainer = SimpleTrainer(model, loader, optimizer, clip_grad_norm=clip)
    recorder = StepRecorder()
    trainer.register_hooks([hooks.LRScheduler(optimizer, build_lr_scheduler(cfg, optimizer)), recorder])
    with BusyProcess() if args.busy else contextlib.nullcontext():
        trainer.train(0, WARMUP_STEPS + args.iters)
    return {"seconds": recorder.seconds, "losses": recorder.losses, "threads": torch.get_num_threads()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["streaming", "steps"])
    parser.add_argument("--config-file", default=os.path.join(REPO, "configs", "phantom", "ultradet.yaml"))
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--as-before", action="store_true", help="steps: per-parameter optimizer step, NaN fill")
    parser.add_argument("--busy", action="store_true", help="steps: train next to a busy process")
    parser.add_argument("opts", nargs="*", help="config overrides: KEY VALUE ...")
    args = parser.parse_intermixed_args()
    result = streaming(args) if args.mode == "streaming" else steps(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
