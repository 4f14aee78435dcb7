"""Which frames of a video form a training clip.

A clip is NUM_OUT_FRAMES sorted frames drawn from a window of INTERVAL consecutive frames around
a centre frame; the centre frame is always part of the clip. The temporal detector learns from
nearby frames that share the lesion's appearance, which a window gives and a whole-video draw
would not.

Hard negatives: ``HardNegativeFrameSampler`` draws the centre of windows on mined false-positive
frames FP_SAMPLE_RATE times as often as any other frame, so the model sees the decoys it fell for
more often. The mined file (written by the hard-negative miner, read by
``load_hard_negative_frames``) is JSON, either one object or a list of them::

    {"dataset": "phantom_trainval",
     "frames": [{"video_id": 3, "frame_idx": 17}, {"video_id": 3, "frame_idx": 18}, ...]}

``video_id`` and ``frame_idx`` are the values of the video and frame dicts (same JSON type).
FP_JSON_DIR may name that file or a folder of such files: the last ``*.json`` in file-name order
is used (so the miner names its files with a zero-padded iteration, e.g. fp_0001999.json).
"""

import glob
import os
from typing import Dict, Hashable, List, Optional, Set, Tuple

import numpy as np

from .datasets.validation import read_json, require_keys

__all__ = [
    "WindowFrameSampler",
    "HardNegativeFrameSampler",
    "load_hard_negative_frames",
    "build_frame_sampler",
    "FRAME_SAMPLERS",
]

# (dataset name, video_id) -> frame_idx values of the mined false-positive frames.
HardNegativeFrames = Dict[Tuple[str, Hashable], Set[int]]


class WindowFrameSampler:
    """Uniform centre frame, then the clip's other frames from the window around it."""

    def __init__(self, num_out_frames: int, interval: int):
        if num_out_frames < 1 or interval < 1:
            raise ValueError(
                f"INPUT.TRAIN_FRAME_SAMPLER: NUM_OUT_FRAMES ({num_out_frames}) and INTERVAL ({interval}) must be >= 1"
            )
        self.num_out_frames = num_out_frames
        self.interval = interval

    def centre_weights(self, video: dict) -> Optional[np.ndarray]:
        """Relative probability of each frame position being the window centre (None: uniform)."""
        return None

    def __call__(self, video: dict, rng: np.random.Generator) -> List[int]:
        """Sorted positions (indices into ``video["frames"]``) of one clip. A video shorter than
        NUM_OUT_FRAMES repeats frames (still sorted), so every clip has the same length."""
        num_frames = len(video["frames"])
        weights = self.centre_weights(video)
        p = None if weights is None else weights / weights.sum()
        centre = int(rng.choice(num_frames, p=p))
        start = min(max(centre - self.interval // 2, 0), max(num_frames - self.interval, 0))
        others = [i for i in range(start, min(start + self.interval, num_frames)) if i != centre]
        wanted = self.num_out_frames - 1
        if len(others) >= wanted:
            picks = rng.choice(others, size=wanted, replace=False).tolist()
        else:
            picks = others + rng.choice(others + [centre], size=wanted - len(others)).tolist()
        return sorted([centre] + [int(i) for i in picks])


class HardNegativeFrameSampler(WindowFrameSampler):
    """WindowFrameSampler whose centre is a mined false-positive frame ``fp_sample_rate`` times as
    often as any other frame of the video (no mined frames: same as WindowFrameSampler)."""

    def __init__(self, num_out_frames: int, interval: int, hard_negatives: HardNegativeFrames,
                 fp_sample_rate: float):
        super().__init__(num_out_frames, interval)
        if fp_sample_rate <= 0:
            raise ValueError(f"INPUT.TRAIN_FRAME_SAMPLER.FP_SAMPLE_RATE must be > 0, got {fp_sample_rate}")
        self.hard_negatives = hard_negatives
        self.fp_sample_rate = float(fp_sample_rate)

    def centre_weights(self, video: dict) -> Optional[np.ndarray]:
        mined = self.hard_negatives.get((video["dataset"], video["video_id"]))
        if not mined:
            return None
        weights = np.ones(len(video["frames"]))
        for position, frame in enumerate(video["frames"]):
            if frame["frame_idx"] in mined:
                weights[position] = self.fp_sample_rate
        return weights


def _resolve_fp_file(path: str) -> str:
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.json")))
        if not files:
            raise FileNotFoundError(f"INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR={path} holds no *.json file")
        return files[-1]
    return path


def load_hard_negative_frames(path: str) -> HardNegativeFrames:
    """Read a mined false-positive file (or the latest one of a folder); format in the module doc."""
    path = _resolve_fp_file(path)
    content = read_json(path, what="hard-negative file")
    groups = content if isinstance(content, list) else [content]
    mined: HardNegativeFrames = {}
    for g, group in enumerate(groups):
        require_keys(group, ("dataset", "frames"), f"{path}: entry {g}")
        for i, frame in enumerate(group["frames"]):
            require_keys(frame, ("video_id", "frame_idx"), f"{path}: entry {g} frames[{i}]")
            mined.setdefault((group["dataset"], frame["video_id"]), set()).add(int(frame["frame_idx"]))
    return mined


def _build_window(cfg) -> WindowFrameSampler:
    s = cfg.INPUT.TRAIN_FRAME_SAMPLER
    if s.FP_JSON_DIR:
        raise ValueError(
            f"INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR is set ({s.FP_JSON_DIR}) but NAME is WindowFrameSampler, "
            "which ignores it; set NAME to HardNegativeFrameSampler"
        )
    return WindowFrameSampler(s.NUM_OUT_FRAMES, s.INTERVAL)


def _build_hard_negative(cfg) -> HardNegativeFrameSampler:
    s = cfg.INPUT.TRAIN_FRAME_SAMPLER
    mined = load_hard_negative_frames(s.FP_JSON_DIR) if s.FP_JSON_DIR else {}
    return HardNegativeFrameSampler(s.NUM_OUT_FRAMES, s.INTERVAL, mined, s.FP_SAMPLE_RATE)


FRAME_SAMPLERS = {"WindowFrameSampler": _build_window, "HardNegativeFrameSampler": _build_hard_negative}


def build_frame_sampler(cfg) -> WindowFrameSampler:
    """The frame sampler named by INPUT.TRAIN_FRAME_SAMPLER.NAME."""
    name = cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME
    if name not in FRAME_SAMPLERS:
        raise KeyError(f"INPUT.TRAIN_FRAME_SAMPLER.NAME={name!r} is not one of {sorted(FRAME_SAMPLERS)}")
    return FRAME_SAMPLERS[name](cfg)
