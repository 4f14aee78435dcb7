"""Throughput of the training clip loader vs. decoding + resizing the same frames by hand.

The loader adds frame sampling, augmentation, Instances, worker hand-off and batching on top of
the unavoidable work (decode + resize). With DATALOADER.NUM_WORKERS workers it should deliver
at least 0.9x the clips per second of a bare single-process decode+resize loop over exactly the
frames it produced (the target with 2 workers).

    .venv/bin/python benchmarks/data_loader.py                # synthetic 256x256 frames
    .venv/bin/python benchmarks/data_loader.py --root datasets/phantom_v60_f80_s256_seed0_t0.25

``--root`` takes any folder with a COCO-video trainval.json (e.g. a generated phantom).
"""

import argparse
import gc
import itertools
import json
import os
import resource
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from usvid.config import add_ultrasound_config, get_cfg  # noqa: E402
from usvid.data import build_video_detection_train_loader, register_coco_video  # noqa: E402
from usvid.data.mapper import read_frame  # noqa: E402


def write_synthetic_dataset(root: str, num_videos: int, num_frames: int, size: int) -> str:
    """Speckle-like (smoothed Rayleigh noise) PNG frames and a COCO-video JSON with one box per frame."""
    rng = np.random.default_rng(0)
    data = {"videos": [], "images": [], "annotations": [], "categories": [{"id": 1, "name": "lesion"}]}
    for v in range(num_videos):
        data["videos"].append({"id": v, "name": f"video_{v}"})
        os.makedirs(os.path.join(root, f"video_{v}"), exist_ok=True)
        for f in range(num_frames):
            speckle = cv2.GaussianBlur(rng.rayleigh(40, (size, size)).astype(np.float32), (5, 3), 0)
            file_name = f"video_{v}/{f:06d}.png"
            cv2.imwrite(os.path.join(root, file_name), np.clip(speckle, 0, 255).astype(np.uint8))
            image_id = len(data["images"])
            data["images"].append(
                {"id": image_id, "video_id": v, "frame_id": f, "file_name": file_name, "height": size, "width": size}
            )
            data["annotations"].append(
                {"id": image_id, "image_id": image_id, "bbox": [60, 70, 50, 40], "instance_id": 0, "category_id": 1}
            )
    path = os.path.join(root, "trainval.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_loader(cfg, num_batches: int):
    """(wall seconds for num_batches after a warm-up batch, CPU seconds of the main process and
    its workers (start-up included), the (file, out size) of every frame)."""
    cpu_start, children_start = time.process_time(), _children_cpu()
    loader = iter(build_video_detection_train_loader(cfg))
    next(loader)  # worker start-up is not throughput
    frames = []
    start = time.perf_counter()
    for batch in itertools.islice(loader, num_batches):
        frames += [(f["file_name"], tuple(f["image"].shape[1:])) for clip in batch for f in clip]
    wall = time.perf_counter() - start
    del loader  # joins the workers, so their CPU time is counted
    gc.collect()
    cpu = time.process_time() - cpu_start + _children_cpu() - children_start
    return wall, cpu, frames


def time_raw(frames, image_format: str):
    """(wall, CPU) seconds to decode and resize ``frames`` in this process."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for file_name, (h, w) in frames:
        image = read_frame(file_name, image_format)
        if image.shape[:2] != (h, w):
            cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="dataset folder with trainval.json (default: synthetic frames)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--segs-per-batch", type=int, default=4)
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternate loader and raw timings this many times; the best of each is kept "
        "(the machine may be shared, the minimum is the least disturbed run)",
    )
    args = parser.parse_args()

    cv2.setNumThreads(1)  # the bare loop and each worker use one core each
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        json_file = os.path.join(root, "trainval.json") if args.root else write_synthetic_dataset(tmp, 8, 40, 256)
        register_coco_video("bench_trainval", json_file, root, class_agnostic=True)
        cfg = add_ultrasound_config(get_cfg())
        cfg.DATASETS.TRAIN = ("bench_trainval",)
        cfg.SEED = 0
        cfg.DATALOADER.NUM_WORKERS = args.workers
        cfg.SOLVER.SEGS_PER_BATCH = args.segs_per_batch
        cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = args.frames_per_clip

        loader_s = raw_s = loader_cpu = raw_cpu = float("inf")
        for _ in range(args.rounds):
            seconds, cpu, frames = time_loader(cfg, args.batches)
            loader_s, loader_cpu = min(loader_s, seconds), min(loader_cpu, cpu)
            seconds, cpu = time_raw(frames, cfg.INPUT.FORMAT)
            raw_s, raw_cpu = min(raw_s, seconds), min(raw_cpu, cpu)
    clips = args.batches * args.segs_per_batch
    loader_rate, raw_rate = clips / loader_s, clips / raw_s
    print(
        f"best of {args.rounds} rounds; frames: {len(frames)} in {clips} clips of {args.frames_per_clip} "
        f"({'synthetic 256x256' if not args.root else args.root}); cpu cores: {os.cpu_count()}"
    )
    print(f"train loader ({args.workers} workers): {loader_rate:8.1f} clips/s  ({loader_s:.2f} s)")
    print(f"raw decode+resize (1 process):  {raw_rate:8.1f} clips/s  ({raw_s:.2f} s)")
    print(f"ratio loader / raw: {loader_rate / raw_rate:.2f}x (target >= 0.9x)")
    print(
        f"CPU per clip: loader {1000 * loader_cpu / clips:.1f} ms (main + workers, incl. start-up), "
        f"raw {1000 * raw_cpu / clips:.1f} ms; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
