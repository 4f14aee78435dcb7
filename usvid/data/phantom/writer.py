"""Writing the dataset: frames as PNG in the CVA-BUS release layout and the COCO-video JSON files.

Layout, as CVA-BUS and BUV are released (JSON file names and video names are relative to
root/rawframes, e.g. file_name "benign/phantom_0003/000000.png", video name
"benign/phantom_0003"), so the phantom exercises the loader the same way the public data does:
    root/rawframes/{benign,malignant,normal}/phantom_0003/000000.png ...
    root/trainval.json, root/test.json, root/phantom_meta.json

Each video is rendered and written by one worker (`write_video`), which returns a small
`VideoRecord`; the parent numbers images and annotations in video order, so ids and bytes do not
depend on how many workers ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2

from .params import FPS, PhantomParams
from .video import plan_video, render_frames, video_rngs

PNG_COMPRESSION = 3  # fixed: the same bytes on every run
LESION_CATEGORY_ID = 1
CATEGORIES_JSON = [{"id": LESION_CATEGORY_ID, "name": "lesion"}]


@dataclass(frozen=True)
class FrameRecord:
    file_name: str  # relative to root/rawframes
    boxes: tuple[tuple[tuple[int, int, int, int], int], ...]  # ([x, y, w, h], instance_id)


@dataclass(frozen=True)
class VideoRecord:
    index: int
    name: str
    category: str
    frames: tuple[FrameRecord, ...]


def video_name(category: str, index: int) -> str:
    """E.g. "benign/phantom_0003": the video's folder under rawframes/ and its JSON name."""
    return f"{category}/phantom_{index:04d}"


def write_video(root: str, params: PhantomParams, index: int, category: str) -> VideoRecord:
    """Renders video `index` and writes its frames; deterministic in (params.seed, index)."""
    plan_rng, render_rng = video_rngs(params.seed, index)
    plan = plan_video(plan_rng, category, params.frames_per_video, params.height, params.width)
    name = video_name(category, index)
    folder = Path(root) / "rawframes" / name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for frame_id, frame in enumerate(render_frames(plan, render_rng)):
        relative = f"{name}/{frame_id:06d}.png"
        path = folder / f"{frame_id:06d}.png"
        if not cv2.imwrite(str(path), frame.image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
            raise OSError(f"could not write phantom frame {path} (is the folder writable?)")
        frames.append(FrameRecord(relative, tuple((lesion.bbox, lesion.instance_id) for lesion in frame.lesions)))
    return VideoRecord(index, name, category, tuple(frames))


def write_video_task(task: tuple) -> VideoRecord:
    """Process-pool entry point: the (root, params, index, category) tuple unpacked."""
    return write_video(*task)


def build_coco_splits(records: list[VideoRecord], test_indices: set[int], params: PhantomParams) -> tuple[dict, dict]:
    """(trainval, test) COCO-video dicts; ids are unique across both files and follow video
    order (video id = index + 1)."""
    splits = {"trainval": _empty_split(), "test": _empty_split()}
    image_id = annotation_id = 0
    for record in sorted(records, key=lambda r: r.index):
        split = splits["test" if record.index in test_indices else "trainval"]
        video_id = record.index + 1
        split["videos"].append(
            {
                "id": video_id,
                "name": record.name,
                "category": record.category,
                "fps": FPS,
                "num_frames": len(record.frames),
                "height": params.height,
                "width": params.width,
            }
        )
        for frame_id, frame in enumerate(record.frames):
            image_id += 1
            split["images"].append(
                {
                    "id": image_id,
                    "video_id": video_id,
                    "frame_id": frame_id,
                    "file_name": frame.file_name,
                    "height": params.height,
                    "width": params.width,
                }
            )
            for (x, y, w, h), instance_id in frame.boxes:
                annotation_id += 1
                split["annotations"].append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "video_id": video_id,
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "instance_id": instance_id,
                        "category_id": LESION_CATEGORY_ID,
                        "iscrowd": 0,
                    }
                )
    return splits["trainval"], splits["test"]


def _empty_split() -> dict:
    return {"videos": [], "images": [], "annotations": [], "categories": list(CATEGORIES_JSON)}


def write_json(path: Path, content: dict) -> None:
    """Compact, key-order-stable JSON (byte-identical for identical content)."""
    path.write_text(json.dumps(content, separators=(",", ":")) + "\n", encoding="utf-8")
