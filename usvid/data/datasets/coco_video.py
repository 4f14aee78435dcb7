"""Loader for COCO-style video annotation files: CVA-BUS, BUV / CVA-Net and the phantom.

Accepted layout (one JSON object)::

    {"videos":      [{"id", "name" (optional; also accepted: "file_name"), ...}]   (optional),
     "images":      [{"id", "video_id", "file_name" (see frame_paths.py), "height", "width",
                      frame index under "frame_id" | "frame_index" | "frame_idx"}],
     "annotations": [{"image_id", "bbox": [x, y, w, h], "category_id",
                      track under "instance_id" | "track_id" (optional, -1 when absent)}],
     "categories":  [{"id", "name"}]                                               (optional)}

Key variants, all accepted: CVA-BUS writes "frame_id" and "instance_id"; ImageNet-VID style
files (BUV / CVA-Net: imagenet_vid_train_15frames.json, imagenet_vid_val.json) write
"frame_id" or "frame_index"/"frame_idx", may omit "videos" (videos are then the distinct
"video_id" values of the images) and may carry "height"/"width" on the video instead of the
image. Without "categories", the category ids found in the annotations become the classes.

Frame files are found by one of three path rules, the same for the whole file (see
frame_paths.py): image_root/file_name, image_root/rawframes/file_name (the released CVA-BUS
and BUV files), or image_root/rawframes/<video name>/<basename(file_name)>.

Known defects of the public data are repaired and counted in one warning per file (see
validation.py): negative box width/height, boxes outside the image, zero-area boxes, frames
listed out of order. Errors name the file and the entry: malformed JSON (line/column), missing
keys, a missing frame file, a video without images, NaN/inf boxes, duplicate frame indices.
"""

import logging
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional

from ..catalog import MetadataCatalog
from .frame_paths import FrameRef, resolve_frame_paths
from .validation import (
    DatasetFormatError,
    RepairCounts,
    check_box_numbers,
    check_id,
    check_int,
    check_str,
    field_list,
    read_json,
    require_keys,
    sanitize_xyxy,
)

__all__ = ["load_coco_video_json"]

FRAME_INDEX_KEYS = ("frame_id", "frame_index", "frame_idx")
TRACK_ID_KEYS = ("instance_id", "track_id")

logger = logging.getLogger(__name__)


def _first_present(entry: dict, keys, default=None):
    for key in keys:
        if key in entry:
            return entry[key]
    return default


def _category_mapping(data: dict, annotations: List[dict], json_file: str, class_agnostic: bool):
    """(dataset category id -> contiguous 0-based id, class names) sorted by dataset id; with
    ``class_agnostic`` every category maps to 0, "lesion"."""
    categories = field_list(data, "categories", json_file) if "categories" in data else []
    if categories:
        for i, cat in enumerate(categories):
            where = f"{json_file}: categories[{i}]"
            require_keys(cat, ("id", "name"), where)
            check_int(cat["id"], "id", where)
            check_str(cat["name"], "name", where)
        categories = sorted(categories, key=lambda c: c["id"])
        ids, names = [c["id"] for c in categories], [c["name"] for c in categories]
    else:
        ids = sorted(
            {
                check_int(a["category_id"], "category_id", f"{json_file}: annotations[{i}]")
                for i, a in enumerate(annotations)
                if isinstance(a, dict) and "category_id" in a
            }
        )
        names = [f"category_{i}" for i in ids] if len(ids) != 1 else ["lesion"]
    if class_agnostic:
        return {dataset_id: 0 for dataset_id in ids}, ["lesion"]
    if len(ids) > 1:
        logger.warning(
            f"{json_file}: keeping {len(ids)} categories {names}. usvid's detectors train on the first "
            f"({names[0]!r}, contiguous id 0) only, while the video metrics count every box as a lesion; "
            f"for lesion detection load it with class_agnostic=True (register_coco_video's default)."
        )
    return {dataset_id: contiguous for contiguous, dataset_id in enumerate(ids)}, names


def _check_image_entries(images: List[Any], json_file: str) -> None:
    """Every image entry is an object with usable id / video_id / file_name, so later lookups can
    trust them (a list or null as an id would otherwise fail deep inside a dict lookup). Image
    ids must be unique: ids restarting in every video, a common export bug, would otherwise
    attach one video's boxes to another's frames without a word."""
    first_index_of_id: Dict[Any, int] = {}
    for i, image in enumerate(images):
        where = f"{json_file}: images[{i}]"
        require_keys(image, (), where)
        where = f"{where} (id={image.get('id', '?')})"
        require_keys(image, ("id", "video_id", "file_name"), where)
        check_id(image["id"], "id", where)
        check_id(image["video_id"], "video_id", where)
        check_str(image["file_name"], "file_name", where)
        first = first_index_of_id.setdefault(image["id"], i)
        if first != i:
            raise DatasetFormatError(
                f"{where}: image id {image['id']!r} is already used by images[{first}] (video_id "
                f"{images[first]['video_id']!r}); image ids must be unique across the file"
            )


def _videos_by_id(data: dict, images: List[dict], json_file: str) -> Dict[Any, dict]:
    if "videos" not in data:
        return {img["video_id"]: {"id": img["video_id"]} for img in images}
    videos = {}
    for i, video in enumerate(field_list(data, "videos", json_file)):
        require_keys(video, ("id",), f"{json_file}: videos[{i}]")
        video_id = check_id(video["id"], "id", f"{json_file}: videos[{i}]")
        if video_id in videos:
            raise DatasetFormatError(f"{json_file}: videos[{i}]: video id {video_id!r} is listed twice")
        videos[video_id] = video
    return videos


def _image_size(image: dict, video: dict, where: str):
    height = image.get("height", video.get("height"))
    width = image.get("width", video.get("width"))
    if height is None or width is None:
        raise DatasetFormatError(f"{where}: missing 'height'/'width' (on the image or its video)")
    return check_int(height, "height", where, minimum=1), check_int(width, "width", where, minimum=1)


def load_coco_video_json(
    json_file: str, image_root: str, dataset_name: Optional[str] = None, class_agnostic: bool = False
) -> List[dict]:
    """Read a COCO-video JSON file into usvid video dicts (see DESIGN.md "Application contract").

    Frame file names are resolved under ``image_root`` by the first rule of
    ``frame_paths.FRAME_PATH_RULES`` that finds every frame of the file. Boxes become absolute XYXY pixels, category
    ids become contiguous 0-based ids (dataset id order). With ``dataset_name``, the dicts carry
    it in "dataset" and MetadataCatalog.get(dataset_name) gets thing_classes,
    thing_dataset_id_to_contiguous_id, json_file and image_root. ``class_agnostic`` maps every
    category to 0 ("lesion"), e.g. CVA-BUS's benign / malignant for lesion detection.
    """
    data = read_json(json_file)
    require_keys(data, ("images", "annotations"), json_file)
    images, annotations = field_list(data, "images", json_file), field_list(data, "annotations", json_file)
    _check_image_entries(images, json_file)
    id_map, class_names = _category_mapping(data, annotations, json_file, class_agnostic)
    videos = _videos_by_id(data, images, json_file)
    counts = RepairCounts()

    frames_by_video: Dict[Any, List[dict]] = defaultdict(list)
    frame_refs: List[FrameRef] = []  # in the order of ``all_frames``
    all_frames: List[dict] = []
    frame_by_image_id: Dict[Any, dict] = {}
    size_by_image_id: Dict[Any, tuple] = {}
    size_by_video_id: Dict[Any, tuple] = {}
    for i, image in enumerate(images):
        where = f"{json_file}: images[{i}] (id={image['id']!r})"
        frame_idx = _first_present(image, FRAME_INDEX_KEYS)
        if frame_idx is None:
            raise DatasetFormatError(f"{where}: missing the frame index (one of {list(FRAME_INDEX_KEYS)})")
        if image["video_id"] not in videos:
            raise DatasetFormatError(f"{where}: video_id {image['video_id']!r} is not in 'videos'")
        size = _image_size(image, videos[image["video_id"]], where)
        if size_by_video_id.setdefault(image["video_id"], size) != size:
            raise DatasetFormatError(
                f"{where}: frame size {size} differs from the size {size_by_video_id[image['video_id']]} "
                "of the video's earlier frames; every frame of a video must have one size"
            )
        size_by_image_id[image["id"]] = size
        frame = {
            "file_name": image["file_name"],  # resolved to a full path once every frame is known
            "frame_idx": check_int(frame_idx, "frame index", where, minimum=0),
            "annotations": [],
        }
        video_name = _first_present(videos[image["video_id"]], ("name", "file_name"))
        frame_refs.append(FrameRef(image["file_name"], video_name if isinstance(video_name, str) else None))
        all_frames.append(frame)
        frame_by_image_id[image["id"]] = frame
        frames_by_video[image["video_id"]].append(frame)

    for i, ann in enumerate(annotations):
        where = f"{json_file}: annotations[{i}] (id={ann.get('id') if isinstance(ann, dict) else '?'})"
        require_keys(ann, ("image_id", "bbox", "category_id"), where)
        check_id(ann["image_id"], "image_id", where)
        check_int(ann["category_id"], "category_id", where)
        if ann["image_id"] not in frame_by_image_id:
            raise DatasetFormatError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in id_map:
            raise DatasetFormatError(f"{where}: category_id {ann['category_id']!r} is not one of {sorted(id_map)}")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetFormatError(f"{where}: bbox {bbox!r} must be [x, y, width, height]")
        x, y, w, h = check_box_numbers(bbox, where)
        height, width = size_by_image_id[ann["image_id"]]
        box = sanitize_xyxy([x, y, x + w, y + h], width, height, counts, where)
        if box is None:
            continue
        frame_by_image_id[ann["image_id"]]["annotations"].append(
            {
                "bbox": box,
                "track_id": check_id(_first_present(ann, TRACK_ID_KEYS, -1), "instance_id", where),
                "category_id": id_map[ann["category_id"]],
            }
        )

    dataset_dicts = []
    for video_id, video in videos.items():
        frames = frames_by_video.get(video_id)
        if not frames:
            raise DatasetFormatError(f"{json_file}: video id={video_id!r} (name={video.get('name')!r}) has no images")
        order = [f["frame_idx"] for f in frames]
        if order != sorted(order):
            counts.unsorted_videos += 1
            frames.sort(key=lambda f: f["frame_idx"])
        if len(set(order)) != len(order):
            raise DatasetFormatError(f"{json_file}: video id={video_id!r} lists a frame index twice")
        counts.lesion_free_frames += sum(1 for f in frames if not f["annotations"])
        height, width = size_by_video_id[video_id]
        dataset_dicts.append(
            {
                "video_id": video_id,
                "video_name": _first_present(video, ("name", "file_name"), str(video_id)),
                "dataset": dataset_name,
                "video_folder": None,  # set below, once the frame paths are resolved
                "height": height,
                "width": width,
                "is_negative": not any(f["annotations"] for f in frames),
                "frames": frames,
            }
        )

    for frame, path in zip(all_frames, resolve_frame_paths(frame_refs, image_root, json_file)):
        frame["file_name"] = path
    for video in dataset_dicts:
        video["video_folder"] = os.path.dirname(video["frames"][0]["file_name"])
    counts.report(json_file)
    if dataset_name is not None:
        MetadataCatalog.get(dataset_name).set(
            thing_classes=class_names,
            thing_dataset_id_to_contiguous_id=id_map,
            json_file=json_file,
            image_root=image_root,
        )
    return dataset_dicts
