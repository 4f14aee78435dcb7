"""Small on-disk fixtures for the data tests: real PNG frames and COCO-video JSON files."""

import json
import os

import cv2
import numpy as np
import pytest

from usvid.data.catalog import DatasetCatalog, MetadataCatalog


def frame_image(height: int, width: int, seed: int) -> np.ndarray:
    """An asymmetric grayscale frame (horizontal ramp + noise), so flips and jitter are visible."""
    ramp = np.tile(np.linspace(0, 200, width, dtype=np.float32), (height, 1))
    noise = np.random.default_rng(seed).integers(0, 40, size=(height, width))
    return (ramp + noise).astype(np.uint8)


# How ``file_name`` is written, for the three conventions the loader accepts.
FILE_NAME_STYLES = {
    "root": lambda name, f: f"rawframes/{name}/{f:06d}.png",  # relative to the dataset root
    "rawframes": lambda name, f: f"{name}/{f:06d}.png",  # relative to rawframes/, as released
    "basename": lambda name, f: f"{f:06d}.png",  # the folder comes from the video's name
}


def write_coco_video_dataset(
    root, videos, height=32, width=48, json_name="trainval.json", file_names="root", folders=("benign",), **top_level
):
    """Write frames under root/rawframes/<category>/video_NN/ and a CVA-BUS style JSON.

    ``videos``: list of lists of per-frame box lists in XYWH, e.g. [[[[1, 2, 10, 8]], []], ...]
    (video 0 has a box on frame 0, none on frame 1). ``file_names`` picks a FILE_NAME_STYLES
    convention; video v goes in folder ``folders[v % len(folders)]``. Returns the JSON
    path. Extra ``top_level`` keys are written into the JSON as given (e.g. categories).
    """
    root = str(root)
    data = {"videos": [], "images": [], "annotations": [], "categories": [{"id": 1, "name": "lesion"}]}
    image_id = annotation_id = 0
    for v, frames in enumerate(videos):
        name = f"{folders[v % len(folders)]}/video_{v:02d}"
        data["videos"].append({"id": v + 1, "name": name})
        os.makedirs(os.path.join(root, "rawframes", name), exist_ok=True)
        for f, boxes in enumerate(frames):
            file_name = FILE_NAME_STYLES[file_names](name, f)
            cv2.imwrite(
                os.path.join(root, "rawframes", name, f"{f:06d}.png"), frame_image(height, width, seed=v * 1000 + f)
            )
            image_id += 1
            data["images"].append(
                {
                    "id": image_id,
                    "video_id": v + 1,
                    "frame_id": f,
                    "file_name": file_name,
                    "height": height,
                    "width": width,
                }
            )
            for track, box in enumerate(boxes):
                annotation_id += 1
                data["annotations"].append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "video_id": v + 1,
                        "bbox": list(box),
                        "instance_id": track,
                        "category_id": 1,
                        "iscrowd": 0,
                    }
                )
    data.update(top_level)
    path = os.path.join(root, json_name)
    with open(path, "w") as f:
        json.dump(data, f)
    return path


@pytest.fixture
def clean_catalog():
    """Names registered during a test are removed afterwards (the catalogs are process-global)."""
    before = set(DatasetCatalog.list())
    yield
    for name in set(DatasetCatalog.list()) - before:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def coco_writer():
    return write_coco_video_dataset


@pytest.fixture
def make_frame():
    return frame_image
