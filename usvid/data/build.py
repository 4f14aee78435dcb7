"""Train and test loaders for video detection.

Train: an endless stream of batches; a batch is the list of this rank's clips (SEGS_PER_BATCH /
world size), a clip the list of its frame dicts (see mapper.py). Which video a clip comes from
is decided in the main process by ``ClipStream`` (B's TrainingSampler per dataset: every video
once per epoch, one global permutation sharded across ranks; with several datasets in
DATASETS.TRAIN each clip first picks a dataset with equal probability, e.g. breast and thyroid
alike whatever their sizes). Everything random about a clip (frames, augmentation) comes from a
generator seeded by (seed, rank, clip number), so the stream is the same whatever
DATALOADER.NUM_WORKERS and a resumed run continues it exactly: ``loader.sampler.state_dict()``
records how many clips the trainer has CONSUMED (not how many workers prefetched).

Test: one frame per batch (``[frame_dict]``), the frames of a video consecutive and in order;
videos are split across ranks by a greedy balance of frame counts (longest video first to the
rank with the fewest frames so far; each rank keeps dataset order), so ranks finish together.
"""

import itertools
import logging
import os
import random
import signal
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils import comm
from .catalog import DatasetCatalog
from .frame_sampler import WindowFrameSampler, build_frame_sampler
from .mapper import ClipMapper, PackedClip
from .samplers import TrainingSampler

__all__ = [
    "build_video_detection_train_loader",
    "build_video_detection_test_loader",
    "ClipStream",
    "VideoClipTrainLoader",
    "VideoFrameTestLoader",
    "split_videos_by_frames",
    "get_video_dataset_dicts",
]

logger = logging.getLogger(__name__)

# (stream seed, clip number on this rank, dataset index, video index)
ClipKey = Tuple[int, int, int, int]


def get_video_dataset_dicts(names: Sequence[str]) -> List[List[dict]]:
    """The video dicts of each registered dataset; an empty dataset is an error naming it."""
    if isinstance(names, str):
        names = [names]
    datasets = []
    for name in names:
        videos = DatasetCatalog.get(name)
        if not videos:
            raise ValueError(f"Dataset {name!r} has no videos")
        datasets.append(videos)
    return datasets


class ClipStream:
    """The resumable sequence of ClipKeys (seed, clip number, dataset index, video index) of
    this rank.

    Its state is the number of clips consumed; restoring it replays the (cheap, index-only)
    sequence up to that point, which needs nothing from the sampler but its seed.
    """

    def __init__(self, dataset_sizes: Sequence[int], seed: int):
        self.dataset_sizes = list(dataset_sizes)
        self.seed = int(seed)
        self.position = 0  # clips consumed by the trainer
        self.generation = 0  # bumped by load_state_dict so running iterators restart

    def _dataset_index(self, clip: int) -> int:
        if len(self.dataset_sizes) == 1:
            return 0
        rng = np.random.default_rng([self.seed, comm.get_rank(), clip, 1])
        return int(rng.integers(len(self.dataset_sizes)))

    def iter_from(self, start: int) -> Iterator[ClipKey]:
        videos = [
            iter(TrainingSampler(size, shuffle=True, seed=self.seed + d)) for d, size in enumerate(self.dataset_sizes)
        ]
        for clip in itertools.count():
            d = self._dataset_index(clip)
            video = next(videos[d])
            if clip >= start:
                yield self.seed, clip, d, int(video)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.position = int(state["seed"]), int(state["position"])
        self.generation += 1


class _ClipDataset(Dataset):
    """Map-style dataset whose "index" is a ClipKey, so workers build clips deterministically."""

    def __init__(self, datasets: List[List[dict]], frame_sampler: WindowFrameSampler, mapper: ClipMapper, rank: int):
        self.datasets, self.frame_sampler, self.mapper, self.rank = datasets, frame_sampler, mapper, rank

    def __getitem__(self, key: ClipKey) -> PackedClip:
        seed, clip, d, v = key
        video = self.datasets[d][v]
        rng = np.random.default_rng([seed, self.rank, clip])
        frames = [video["frames"][p] for p in self.frame_sampler(video, rng)]
        return self.mapper.map_packed(video, frames, rng)


def _as_list(batch: list) -> list:
    return batch


def _exit_cleanly(signum, frame) -> None:
    os._exit(0)


def _init_worker(worker_id: int) -> None:
    """Distinct, reproducible global RNG seeds per worker and rank (the clips themselves use
    their own generators; this covers any library code that draws from the global ones).

    Workers ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and a worker
    dying of it would fail the trainer's step in flight instead of letting it finish,
    checkpoint and exit. On SIGTERM a worker exits with status 0 instead of dying of the
    signal: a scheduler's stop (Slurm's scancel, a Kubernetes eviction) also reaches the whole
    group, and a worker killed by a signal makes PyTorch raise in the trainer at once, before
    it can checkpoint; a clean exit does not (the trainer needs no new batch to save). PyTorch's
    own shutdown of the workers (a sentinel, then terminate()) works as before, and workers
    still exit when their parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    info = torch.utils.data.get_worker_info()
    seed = (info.seed if info is not None else worker_id) % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(1)  # workers already run in parallel; OpenCV threads would oversubscribe


class VideoClipTrainLoader:
    """Endless iterable of batches (lists of clips); ``.sampler`` is the resumable ClipStream."""

    def __init__(self, dataset: _ClipDataset, stream: ClipStream, clips_per_rank: int, num_workers: int):
        self.dataset, self.sampler = dataset, stream
        self.clips_per_rank, self.num_workers = clips_per_rank, num_workers

    def _torch_loader(self) -> DataLoader:
        generator = torch.Generator()
        generator.manual_seed(self.sampler.seed + comm.get_rank())
        return DataLoader(
            self.dataset,
            batch_size=self.clips_per_rank,
            sampler=self.sampler.iter_from(self.sampler.position),
            num_workers=self.num_workers,
            collate_fn=_as_list,
            worker_init_fn=_init_worker,
            generator=generator,
        )

    def __iter__(self) -> Iterator[List[List[dict]]]:
        while True:
            generation = self.sampler.generation
            for packed_clips in self._torch_loader():
                self.sampler.position += len(packed_clips)
                yield [clip.unpack() for clip in packed_clips]
                if self.sampler.generation != generation:
                    break  # the position was restored: rebuild from there


def _require_lesions(names: Sequence[str], datasets: Sequence[List[dict]]) -> None:
    """A training set without a single lesion box teaches a detector nothing; it usually means
    boxes were all dropped on loading (outside the frames: a wrong image size or box format)."""
    if any(frame["annotations"] for videos in datasets for video in videos for frame in video["frames"]):
        return
    raise ValueError(
        f"DATASETS.TRAIN {tuple(names)} holds no lesion box in any frame; check the loading warnings "
        f"(boxes outside the frames are dropped: a wrong image size or box format?)"
    )


def _clips_per_rank(segs_per_batch: int) -> int:
    world_size = comm.get_world_size()
    if segs_per_batch < 1:
        raise ValueError(f"SOLVER.SEGS_PER_BATCH must be >= 1 clip per iteration, got {segs_per_batch}")
    if segs_per_batch % world_size != 0:
        raise ValueError(
            f"SOLVER.SEGS_PER_BATCH ({segs_per_batch}) must be divisible by the number of processes ({world_size})"
        )
    return segs_per_batch // world_size


def build_video_detection_train_loader(
    cfg, mapper: Optional[ClipMapper] = None, seed: Optional[int] = None
) -> VideoClipTrainLoader:
    """The training loader of cfg.DATASETS.TRAIN (see the module docstring).

    ``seed`` defaults to cfg.SEED, or a seed shared by all ranks when cfg.SEED < 0 (it is saved
    in ``loader.sampler.state_dict()``, so a resumed run continues the same stream).
    """
    if not cfg.DATASETS.TRAIN:
        raise ValueError("DATASETS.TRAIN is empty: name at least one registered dataset")
    datasets = get_video_dataset_dicts(cfg.DATASETS.TRAIN)
    _require_lesions(cfg.DATASETS.TRAIN, datasets)
    clips_per_rank = _clips_per_rank(cfg.SOLVER.SEGS_PER_BATCH)
    if seed is None:
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
    stream = ClipStream([len(d) for d in datasets], seed)
    dataset = _ClipDataset(
        datasets, build_frame_sampler(cfg), mapper or ClipMapper.from_config(cfg, is_train=True), comm.get_rank()
    )
    logger.info(
        f"Train loader: {', '.join(f'{n} ({len(d)} videos)' for n, d in zip(cfg.DATASETS.TRAIN, datasets))}; "
        f"{clips_per_rank} clip(s) of {cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES} frames per rank and step"
    )
    return VideoClipTrainLoader(dataset, stream, clips_per_rank, cfg.DATALOADER.NUM_WORKERS)


def split_videos_by_frames(videos: Sequence[dict], world_size: int) -> List[List[int]]:
    """Video indices per rank, balanced by frame count (greedy: longest first to the least
    loaded rank, ties to the lower rank); each rank's list keeps the dataset order."""
    loads, shares = [0] * world_size, [[] for _ in range(world_size)]
    for v in sorted(range(len(videos)), key=lambda i: -len(videos[i]["frames"])):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        loads[rank] += len(videos[v]["frames"])
        shares[rank].append(v)
    return [sorted(share) for share in shares]


class _FrameDataset(Dataset):
    """The frames of some videos, in order: item i is frame i as a one-frame PackedClip."""

    def __init__(self, videos: List[dict], mapper: ClipMapper):
        self.mapper = mapper
        self.items = [(video, frame) for video in videos for frame in video["frames"]]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> PackedClip:
        video, frame = self.items[i]
        return self.mapper.map_packed(video, [frame])


def _first(batch: list):
    return batch[0]


class VideoFrameTestLoader:
    """Iterable of ``[frame_dict]`` batches in video order; ``len()`` is the number of frames."""

    def __init__(self, dataset: _FrameDataset, num_workers: int):
        self.dataset = dataset
        self._loader = DataLoader(
            dataset,
            batch_size=1,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=_first,
            worker_init_fn=_init_worker,
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[List[dict]]:
        for packed in self._loader:
            yield packed.unpack()


def build_video_detection_test_loader(
    cfg, dataset_name: str, mapper: Optional[ClipMapper] = None
) -> VideoFrameTestLoader:
    """Single-frame batches ``[frame_dict]`` of this rank's videos of ``dataset_name``, frames of a
    video consecutive and in order (also with DATALOADER.NUM_WORKERS > 0);
    ``len(loader)`` is the number of frames on this rank."""
    (videos,) = get_video_dataset_dicts([dataset_name])
    share = split_videos_by_frames(videos, comm.get_world_size())[comm.get_rank()]
    dataset = _FrameDataset([videos[i] for i in share], mapper or ClipMapper.from_config(cfg, is_train=False))
    return VideoFrameTestLoader(dataset, cfg.DATALOADER.NUM_WORKERS)
