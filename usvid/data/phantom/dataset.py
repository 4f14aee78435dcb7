"""generate_phantom_dataset: the whole phantom dataset, videos rendered in parallel."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Optional

import cv2
from tqdm import tqdm

from .params import CATEGORIES, ImageSize, PhantomParams
from .split import assign_categories, choose_test_videos
from .writer import build_coco_splits, write_json, write_video, write_video_task

META_FILE, TRAINVAL_FILE, TEST_FILE = "phantom_meta.json", "trainval.json", "test.json"


def default_num_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _worker_context():
    """forkserver (spawn where missing), never plain fork: a process that already ran OpenCV
    or torch has thread pools whose locks a forked child inherits half-held, and the child
    then hangs in its first OpenCV call."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])  # imported once, not per worker
        return context
    return multiprocessing.get_context("spawn")


def _limit_worker_threads() -> None:
    """One OpenCV thread per worker: the pool already uses every core it was given."""
    cv2.setNumThreads(1)


def _check_root(root: Path) -> None:
    frames = root / "rawframes"
    if frames.is_dir() and any(frames.iterdir()):
        raise FileExistsError(
            f"{frames} already holds frames; delete it or choose another root "
            "(stale frames from an earlier run would be mixed in)"
        )
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"phantom root {root} exists and is not a folder")


def generate_phantom_dataset(
    root,
    num_videos: int = 60,
    frames_per_video: int = 80,
    image_size: ImageSize = 256,
    seed: int = 0,
    test_fraction: float = 0.25,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Writes the synthetic ultrasound video dataset under `root` (CVA-BUS layout, COCO-video
    JSON) and returns a summary: the JSON paths and the counts.

    The files are byte-identical for the same parameters whatever `num_workers` is (default
    min(2, cpu count)); image_size is an int (square) or (height, width).
    """
    params = PhantomParams.from_arguments(num_videos, frames_per_video, image_size, seed, test_fraction)
    if num_workers is None:
        num_workers = default_num_workers()
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1 or None, got {num_workers!r}")
    root = Path(root)
    _check_root(root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    categories = assign_categories(params.num_videos, params.seed)
    tasks = [(str(root), params, index, category) for index, category in enumerate(categories)]
    records = []
    with tqdm(total=len(tasks), desc="phantom videos", unit="video", disable=not progress) as bar:
        if num_workers == 1 or len(tasks) == 1:
            for task in tasks:
                records.append(write_video(*task))
                bar.update()
        else:
            with _worker_context().Pool(min(num_workers, len(tasks)), _limit_worker_threads) as pool:
                for record in pool.imap(write_video_task, tasks):
                    records.append(record)
                    bar.update()

    test_indices = choose_test_videos(categories, params.test_fraction, params.seed)
    trainval, test = build_coco_splits(records, test_indices, params)
    paths = {"trainval_json": root / TRAINVAL_FILE, "test_json": root / TEST_FILE, "meta_json": root / META_FILE}
    write_json(paths["trainval_json"], trainval)
    write_json(paths["test_json"], test)
    counts = {
        "num_videos": params.num_videos,
        "num_trainval_videos": len(trainval["videos"]),
        "num_test_videos": len(test["videos"]),
        "num_images": len(trainval["images"]) + len(test["images"]),
        "num_annotations": len(trainval["annotations"]) + len(test["annotations"]),
        "videos_per_category": {c: categories.count(c) for c in CATEGORIES},
    }
    # Written last: its presence marks a complete dataset.
    write_json(paths["meta_json"], {**params.to_meta(), "counts": counts})
    return {
        "root": str(root),
        **{k: str(v) for k, v in paths.items()},
        **counts,
        "seconds": round(time.perf_counter() - started, 2),
    }
