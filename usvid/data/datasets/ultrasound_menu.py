"""The multi-hospital CSV-menu format of the original Ultrasound VID project.

Layout (all paths in the menu are relative to ``root``)::

    root/
      {organ}.csv                   the menu: one row per video (the file name can be overridden)
      <jpg_folder>/                 one folder per video
        info.json                   {"num_frames": N, "cropped_shape": [height, width],
                                     "static_frames": [frame indices], "empty_flag": false}
        0.jpg 1.jpg ... (N-1).jpg   the frames, named by frame index
      <pkl_file>                    the video's box annotations as JSON (see below)

Menu columns: ``pkl_file, jpg_folder, neg, video_path, hospital, anno_format, db_key, device``

* ``pkl_file``: the annotation file. Pickles are never loaded: a path ending in ``.pkl`` is read
  from the same-named ``.json`` beside it. May be empty for a negative video.
* ``jpg_folder``: the video's frame folder (holds info.json).
* ``neg``: 1/true for a lesion-free video (0/false otherwise; empty means 0).
* ``video_path``: the source video file (kept in the video dict as "video_path", not read).
* ``hospital``: the site name used in dataset names.
* ``anno_format``: "json", "pkl" (the .json sibling is read either way) or empty.
* ``db_key``: the timestamp of the data snapshot (e.g. 20210301) used in dataset names.
* ``device``: the ultrasound machine model (may be empty) used in dataset names.

Annotation file: ``{"frame_anno": [{"box": [{"xtl", "ytl", "xbr", "ybr", "lesion_index"}, ...]},
...]}`` with one entry per frame (index = frame index); boxes are absolute pixels in the cropped
frame; ``lesion_index`` identifies a lesion across frames (the track id). All lesions are class 0.

info.json: ``cropped_shape`` is the frame size [height, width]; ``static_frames`` are frozen
frames (the screen was paused): they are left out of the dataset because identical repeated
frames would weigh a moment many times in training and in the metrics; the remaining frames
keep their original ``frame_idx``. ``empty_flag`` true marks a video with no usable content: it
is skipped. Both are counted in the file's single repair warning.

Registered names (see ``register_ultrasound_menu``): ``{organ}_{hospital}@{db_key}``,
``{organ}_{hospital}@{device}`` (rows with a device) and ``{organ}_ALL@{db_key}``.
"""

import csv
import logging
import os
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

from ..catalog import DatasetCatalog, MetadataCatalog
from .validation import (
    DatasetFormatError,
    RepairCounts,
    check_files_exist,
    check_id,
    check_int,
    field_list,
    read_json,
    require_keys,
    sanitize_xyxy,
)

__all__ = ["register_ultrasound_menu", "load_ultrasound_menu", "MENU_COLUMNS"]

logger = logging.getLogger(__name__)

MENU_COLUMNS = ("pkl_file", "jpg_folder", "neg", "video_path", "hospital", "anno_format", "db_key", "device")
ANNO_FORMATS = ("", "json", "pkl")
BOX_KEYS = ("xtl", "ytl", "xbr", "ybr", "lesion_index")


def _read_menu(menu_csv: str) -> List[Dict[str, str]]:
    if not os.path.isfile(menu_csv):
        raise FileNotFoundError(f"menu CSV {menu_csv} does not exist")
    try:
        # utf-8-sig: a CSV saved by Excel starts with a byte-order mark, which would otherwise
        # glue itself to the first column's name.
        with open(menu_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MENU_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetFormatError(
                    f"{menu_csv}: missing column(s) {missing}; expected {list(MENU_COLUMNS)}, found {reader.fieldnames}"
                )
            # restkey/None: cells beyond the header (a row with too many commas) are kept apart.
            rows = [
                {
                    k: (v or "").strip()
                    for k, v in row.items()
                    if isinstance(k, str) and isinstance(v, (str, type(None)))
                }
                for row in reader
            ]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetFormatError(f"{menu_csv}: not a readable UTF-8 CSV menu ({e})") from None
    for line, row in enumerate(rows, start=2):
        row["_where"] = f"{menu_csv}: line {line} (jpg_folder={row['jpg_folder']!r})"
        if not row["jpg_folder"] or not row["hospital"] or not row["db_key"]:
            raise DatasetFormatError(f"{row['_where']}: jpg_folder, hospital and db_key must not be empty")
        if row["anno_format"].lower() not in ANNO_FORMATS:
            raise DatasetFormatError(
                f"{row['_where']}: anno_format {row['anno_format']!r} is not one of {list(ANNO_FORMATS)}"
            )
    return rows


def _is_true(value: str, where: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("", "0", "false", "no"):
        return False
    raise DatasetFormatError(f"{where}: neg={value!r} is not one of 1/0/true/false")


def _annotation_json_path(root: str, pkl_file: str) -> str:
    """The JSON twin of a ``.pkl`` path (pickles can run code, so they are never opened)."""
    stem, ext = os.path.splitext(pkl_file)
    return os.path.join(root, stem + ".json" if ext.lower() == ".pkl" else pkl_file)


def _frame_boxes(
    row: dict, root: str, num_frames: int, counts: RepairCounts, height: int, width: int
) -> List[List[dict]]:
    """Per frame, the list of annotation dicts of one menu row."""
    where = row["_where"]
    if not row["pkl_file"]:
        if not _is_true(row["neg"], where):
            raise DatasetFormatError(f"{where}: pkl_file is empty but the video is not marked neg")
        return [[] for _ in range(num_frames)]
    anno_path = _annotation_json_path(root, row["pkl_file"])
    anno = read_json(anno_path)
    require_keys(anno, ("frame_anno",), anno_path)
    frame_anno = field_list(anno, "frame_anno", anno_path)
    if len(frame_anno) != num_frames:
        raise DatasetFormatError(
            f"{anno_path}: frame_anno has {len(frame_anno)} entries but info.json says num_frames={num_frames}"
        )
    boxes_per_frame = []
    for frame_idx, entry in enumerate(frame_anno):
        require_keys(entry, ("box",), f"{anno_path}: frame_anno[{frame_idx}]")
        frame_boxes = []
        for j, box in enumerate(field_list(entry, "box", f"{anno_path}: frame_anno[{frame_idx}]")):
            box_where = f"{anno_path}: frame_anno[{frame_idx}].box[{j}]"
            require_keys(box, BOX_KEYS, box_where)
            track_id = check_id(box["lesion_index"], "lesion_index", box_where)
            xyxy = sanitize_xyxy([box["xtl"], box["ytl"], box["xbr"], box["ybr"]], width, height, counts, box_where)
            if xyxy is not None:
                frame_boxes.append({"bbox": xyxy, "track_id": track_id, "category_id": 0})
        boxes_per_frame.append(frame_boxes)
    return boxes_per_frame


def _load_video(row: dict, root: str, dataset_name: str, counts: RepairCounts) -> Optional[dict]:
    """The video dict of one menu row, or None for a video flagged empty."""
    video_folder = os.path.join(root, row["jpg_folder"])
    info_path = os.path.join(video_folder, "info.json")
    info = read_json(info_path, what="video info file")
    require_keys(info, ("num_frames", "cropped_shape"), info_path)
    empty_flag = info.get("empty_flag", False)
    if not isinstance(empty_flag, bool):
        raise DatasetFormatError(f"{info_path}: 'empty_flag' must be true or false, got {empty_flag!r}")
    if empty_flag:
        counts.empty_videos += 1
        return None
    num_frames = check_int(info["num_frames"], "num_frames", info_path, minimum=1)
    shape = field_list(info, "cropped_shape", info_path)
    if len(shape) < 2:
        raise DatasetFormatError(f"{info_path}: 'cropped_shape' must be [height, width], got {shape!r}")
    height, width = (check_int(v, "cropped_shape", info_path, minimum=1) for v in shape[:2])
    boxes = _frame_boxes(row, root, num_frames, counts, height, width)
    static_frames = field_list(info, "static_frames", info_path) if "static_frames" in info else []
    static = {check_int(i, "static_frames", info_path) for i in static_frames}
    counts.static_frames += len(static & set(range(num_frames)))
    frames = [
        {"file_name": os.path.join(video_folder, f"{i}.jpg"), "frame_idx": i, "annotations": boxes[i]}
        for i in range(num_frames)
        if i not in static
    ]
    if not frames:
        raise DatasetFormatError(
            f"{info_path}: the video has no frames left (num_frames={num_frames}, {len(static)} static)"
        )
    check_files_exist((f["file_name"] for f in frames), info_path)
    counts.lesion_free_frames += sum(1 for f in frames if not f["annotations"])
    return {
        "video_id": row["jpg_folder"],
        "dataset": dataset_name,
        "video_folder": video_folder,
        "video_path": row["video_path"],
        "hospital": row["hospital"],
        "device": row["device"],
        "height": height,
        "width": width,
        "is_negative": not any(f["annotations"] for f in frames),
        "frames": frames,
    }


def load_ultrasound_menu(
    menu_csv: str, root: str, dataset_name: str, keep: Callable[[dict], bool] = lambda row: True
) -> List[dict]:
    """Video dicts of the menu rows for which ``keep(row)`` is true."""
    counts = RepairCounts()
    videos = [_load_video(row, root, dataset_name, counts) for row in _read_menu(menu_csv) if keep(row)]
    counts.report(f"{menu_csv} [{dataset_name}]")
    return [v for v in videos if v is not None]


def _names_to_filters(rows: List[dict], organ: str) -> Dict[str, Callable[[dict], bool]]:
    """Dataset name -> row filter, for every name the menu defines (in first-seen order)."""
    filters: OrderedDict[str, tuple] = OrderedDict()

    def add(name: str, key: tuple) -> None:
        if filters.setdefault(name, key) != key:
            raise DatasetFormatError(
                f"dataset name {name!r} would mean two different subsets ({filters[name]} and {key}); "
                "a device and a db_key of the same hospital must differ"
            )

    for row in rows:
        add(f"{organ}_{row['hospital']}@{row['db_key']}", ("hospital+db_key", row["hospital"], row["db_key"]))
        if row["device"]:
            add(f"{organ}_{row['hospital']}@{row['device']}", ("hospital+device", row["hospital"], row["device"]))
        add(f"{organ}_ALL@{row['db_key']}", ("db_key", row["db_key"]))

    def make_filter(key: tuple) -> Callable[[dict], bool]:
        kind, *values = key
        fields = {
            "hospital+db_key": ("hospital", "db_key"),
            "hospital+device": ("hospital", "device"),
            "db_key": ("db_key",),
        }[kind]
        return lambda row: all(row[f] == v for f, v in zip(fields, values))

    return {name: make_filter(key) for name, key in filters.items()}


def register_ultrasound_menu(root: str, organ: str, menu_csv: Optional[str] = None) -> List[str]:
    """Register every dataset the menu ``root/{organ}.csv`` (or ``menu_csv``) defines.

    Names: ``{organ}_{hospital}@{db_key}``, ``{organ}_{hospital}@{device}`` and
    ``{organ}_ALL@{db_key}``. The menu is read now (to know the names); the per-video files are
    read when a dataset is fetched with DatasetCatalog.get. Registering again replaces the
    previous registration. Returns the registered names.
    """
    menu_csv = menu_csv or os.path.join(root, f"{organ}.csv")
    filters = _names_to_filters(_read_menu(menu_csv), organ)
    for name, keep in filters.items():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
        DatasetCatalog.register(name, lambda name=name, keep=keep: load_ultrasound_menu(menu_csv, root, name, keep))
        MetadataCatalog.get(name).set(
            thing_classes=["lesion"], menu_csv=menu_csv, image_root=root, evaluator_type="ultrasound_video"
        )
    return list(filters)
