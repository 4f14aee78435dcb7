"""The file of mined false-positive frames: the miner writes it, the frame sampler reads it.

JSON, either one object or a list of them::

    {"dataset": "phantom_trainval",
     "frames": [{"video_id": 3, "frame_idx": 17}, {"video_id": 3, "frame_idx": 18}, ...]}

``video_id`` and ``frame_idx`` are the values of the video and frame dicts (same JSON type).
INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR may name that file or a folder of such files: the last
``*.json`` in file-name order is used (so the miner names its files with a zero-padded
iteration, e.g. fp_0001999.json).
"""

import glob
import json
import os
from typing import Dict, Hashable, List, Mapping, Sequence, Set, Tuple

from usvid.data.datasets.validation import read_json, require_keys
from usvid.utils.file_io import atomic_write

__all__ = ["HardNegativeFrames", "load_hard_negative_frames", "write_hard_negative_json"]

# (dataset name, video_id) -> frame_idx values of the mined false-positive frames.
HardNegativeFrames = Dict[Tuple[str, Hashable], Set[int]]


def write_hard_negative_json(
    path: str,
    mined_by_dataset: Mapping[str, Mapping[Hashable, List[int]]],
    videos_by_dataset: Mapping[str, Sequence[dict]],
) -> str:
    """Write the mined frames (positions per video, per dataset) in the format above,
    translating positions into the videos' ``frame_idx`` values. Atomic, so a loader never reads
    a half-written file. Returns ``path``."""
    groups = []
    for dataset_name, mined in mined_by_dataset.items():
        videos = {video["video_id"]: video for video in videos_by_dataset[dataset_name]}
        frames = [
            {"video_id": video_id, "frame_idx": videos[video_id]["frames"][position]["frame_idx"]}
            for video_id in sorted(mined)
            for position in mined[video_id]
        ]
        groups.append({"dataset": dataset_name, "frames": frames})
    with atomic_write(path, "w") as f:
        json.dump(groups, f, indent=1)
    return path


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
