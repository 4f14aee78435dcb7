"""Streaming inference speed of the video detectors on CPU (not a test).

For each model, frames of one synthetic 256x256 video are streamed one per call after
``reset()`` (exactly how the evaluator runs them). The models run interleaved (A, B, C, A, ...)
so that load changes on a shared machine hit them alike. The table reports medians over repeats
of the wall time per frame (and FPS), of the process CPU time per frame (with one thread, the
better estimate of the idle-machine speed while other jobs share the CPU), and a per-stage
breakdown of the wall time taken from forward hooks on the sub-modules (with synchronous CPU
execution a hook-to-hook interval is the stage's own time):

* backbone: the ResNet up to res4 (its FPS is the floor no detector can beat);
* proposals: the FCOS head, plus the P3 top-down step when a head reads P3
  (MODEL.FCOS.IN_FEATURE or MODEL.ROI_BOX_HEAD.IN_FEATURE "p3"); for SingleFrameFCOS: the whole head;
* RoI head: RoIAlign + res5 + FC + predictors (UltraDet's one RoIAlign call also pools NTCA's
  context channels);
* temporal: ConvLSTM + NTCA (after pooling) + relation layers (UltraDet's temporal parts);
* other: the rest (normalisation, top-k / NMS, rescaling to the original size).

"UltraDet (no temporal)" is the same network with NTCA, relation layers and ConvLSTM switched
off, so the ratio of the two UltraDet rows is the cost of the temporal layers.

    .venv/bin/python benchmarks/inference_speed.py [--config configs/phantom/ultradet.yaml]
        [--threads 2] [--frames 40] [--repeats 5] [opts ...]
"""

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from usvid.config import load_ultrasound_config  # noqa: E402
from usvid.modeling import build_model  # noqa: E402

STAGES = {
    "backbone": ["backbone"],
    "proposals": ["top_down", "proposal_generator", "head"],
    "RoI head": ["roi_heads.pooler", "roi_heads.box_head", "roi_heads.cls_score", "roi_heads.bbox_pred"],
    "temporal": ["lstm", "roi_heads.ntca", "roi_heads.relations"],
}


class StageTimer:
    """Accumulates the time spent inside the named sub-modules of a model."""

    def __init__(self, model):
        self.totals = defaultdict(float)
        modules = dict(model.named_modules())
        for stage, names in STAGES.items():
            for name in names:
                module = modules.get(name)
                # A ModuleList is never called itself: time each of its layers instead.
                for part in module if isinstance(module, torch.nn.ModuleList) else [module]:
                    if part is not None:
                        self._attach(part, stage)

    def _attach(self, module, stage):
        start = {}
        module.register_forward_pre_hook(lambda m, i: start.__setitem__("t", time.perf_counter()))
        module.register_forward_hook(lambda m, i, o: self._add(stage, time.perf_counter() - start["t"]))

    def _add(self, stage, seconds):
        self.totals[stage] += seconds

    def reset(self):
        self.totals.clear()


def make_cfg(config_file, opts, overrides=()):
    cfg = load_ultrasound_config(config_file, list(opts) + list(overrides))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def stream_video(model, frames):
    model.reset()
    for frame in frames:
        model([frame])


def backbone_only(model, frames):
    for frame in frames:
        model.backbone(model.normalize_frames([frame]))


def measure_side_by_side(runs, frames, repeats):
    """Median seconds per frame and per-stage seconds per frame of each run.

    The runs are interleaved (A, B, C, A, B, C, ...) so that a load change on a shared machine
    hits all of them alike and their ratios stay meaningful.
    """
    timers = {name: StageTimer(model) for name, (model, _) in runs.items()}
    per_frame, cpu_per_frame = defaultdict(list), defaultdict(list)
    per_stage = defaultdict(lambda: defaultdict(list))
    with torch.no_grad():
        for model, run in runs.values():
            run(model, frames[:5])  # warm-up
        for _ in range(repeats):
            for name, (model, run) in runs.items():
                timers[name].reset()
                start, cpu_start = time.perf_counter(), time.process_time()
                run(model, frames)
                per_frame[name].append((time.perf_counter() - start) / len(frames))
                cpu_per_frame[name].append((time.process_time() - cpu_start) / len(frames))
                for stage in STAGES:
                    per_stage[name][stage].append(timers[name].totals.get(stage, 0.0) / len(frames))
    return {
        name: (
            statistics.median(per_frame[name]),
            statistics.median(cpu_per_frame[name]),
            {k: statistics.median(v) for k, v in per_stage[name].items()},
        )
        for name in runs
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs/phantom/ultradet.yaml"))
    parser.add_argument("--fcos-config", default=str(REPO / "configs/phantom/fcos.yaml"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = make_cfg(args.config, args.opts)
    channels = len(cfg.MODEL.PIXEL_MEAN)
    frames = [
        {"image": torch.randint(0, 256, (channels, args.size, args.size), dtype=torch.uint8)}
        for _ in range(args.frames)
    ]
    no_temporal = (
        "MODEL.ROI_BOX_HEAD.USE_NTCA",
        False,
        "MODEL.ROI_BOX_HEAD.NUM_RELATION_LAYERS",
        0,
        "MODEL.USE_LSTM",
        False,
    )
    runs = {
        "backbone only (floor)": (build_model(cfg).eval(), backbone_only),
        "UltraDet": (build_model(cfg).eval(), stream_video),
        "UltraDet (no temporal)": (build_model(make_cfg(args.config, args.opts, no_temporal)).eval(), stream_video),
        "SingleFrameFCOS": (build_model(make_cfg(args.fcos_config, args.opts)).eval(), stream_video),
    }
    results = measure_side_by_side(runs, frames, args.repeats)

    header = ["model", "wall ms/frame", "FPS", "CPU ms/frame"] + [f"{s} ms" for s in STAGES] + ["other ms"]
    print(f"threads={args.threads} size={args.size}x{args.size} frames={args.frames} repeats={args.repeats} (median)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, (seconds, cpu_seconds, stages) in results.items():
        if name.startswith("backbone only"):
            stages = {"backbone": seconds}
        stage_ms = [stages.get(s, 0.0) * 1e3 for s in STAGES]
        other = seconds * 1e3 - sum(stage_ms)
        cells = [name, f"{seconds * 1e3:.1f}", f"{1 / seconds:.1f}", f"{cpu_seconds * 1e3:.1f}"]
        print("| " + " | ".join(cells + [f"{v:.1f}" for v in stage_ms] + [f"{other:.1f}"]) + " |")
    for label, index in (("wall", 0), ("CPU", 1)):
        ratio = results["UltraDet"][index] / results["UltraDet (no temporal)"][index]
        print(
            f"temporal overhead ({label} time): UltraDet / UltraDet (no temporal) = {ratio:.3f} "
            f"(+{(ratio - 1) * 100:.1f} %)"
        )


if __name__ == "__main__":
    main()
