"""Checks and repairs shared by every dataset format.

Public ultrasound data has known defects (boxes with negative width, boxes sticking out of the
frame, degenerate boxes, frames listed out of order). Loaders repair what has one obvious
repair, count it, and report the counts in ONE warning per annotation file, so a user sees the
state of the data without a flood of messages; anything without a safe repair (missing files,
NaN boxes, missing keys) is an error naming the file and the entry.
"""

import json
import logging
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Iterable, List, Optional, Sequence

logger = logging.getLogger(__name__)


class DatasetFormatError(ValueError):
    """An annotation file or dataset folder that cannot be read; the message names file and entry."""


def read_json(path: str, what: str = "annotation file") -> Any:
    """Parse a JSON file; malformed JSON is reported with the file, line and column."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise DatasetFormatError(
                f"{path}: not a UTF-8 text file (byte {e.start} is {e.object[e.start : e.start + 1]!r}); "
                f"expected a JSON {what}"
            ) from None


def require_keys(entry: Any, keys: Sequence[str], where: str) -> None:
    """Raise naming ``where`` and the missing keys unless ``entry`` is a dict holding all of them."""
    if not isinstance(entry, dict):
        raise DatasetFormatError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DatasetFormatError(f"{where}: missing required key(s) {missing}; it has {sorted(entry)}")


def field_list(entry: dict, key: str, where: str) -> list:
    """``entry[key]``, which must be a JSON array."""
    value = entry[key]
    if not isinstance(value, list):
        raise DatasetFormatError(f"{where}: '{key}' must be a list, got {type(value).__name__} {value!r}")
    return value


def check_id(value: Any, key: str, where: str) -> Any:
    """An identifier (video_id, image_id, category_id, track id) must be an int or a string:
    anything else (a float, a list, null, a boolean) cannot be matched reliably against others."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DatasetFormatError(f"{where}: '{key}' must be an integer or a string, got {value!r}")
    return value


def check_int(value: Any, key: str, where: str, minimum: Optional[int] = None) -> int:
    """An integer field (frame index, frame count, image side); integral floats such as 3.0 are
    accepted because some JSON writers produce them."""
    is_integral_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, int) or is_integral_float):
        raise DatasetFormatError(f"{where}: '{key}' must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise DatasetFormatError(f"{where}: '{key}' must be >= {minimum}, got {value!r}")
    return int(value)


def check_str(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DatasetFormatError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def check_files_exist(paths: Iterable[str], source: str) -> None:
    """Raise naming the first missing frame file (and how many are missing) of ``source``."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{source}: {len(missing)} frame file(s) do not exist, e.g. {missing[0]}")


@dataclass
class RepairCounts:
    """How many entries of one annotation file were repaired, and how."""

    negative_size_boxes: int = 0  # width/height < 0: corners swapped
    clipped_boxes: int = 0  # partly outside the frame: clipped to it
    dropped_empty_boxes: int = 0  # zero area (after clipping): dropped
    unsorted_videos: int = 0  # frames listed out of order: sorted by frame index
    empty_videos: int = 0  # (menu format) info.json empty_flag: video skipped
    static_frames: int = 0  # (menu format) info.json static_frames: frames left out
    lesion_free_frames: int = 0  # frames without boxes: kept as lesion-free (not a defect)

    def report(self, source: str) -> None:
        """Log one warning for ``source`` if anything was repaired (lesion-free frames alone are
        normal, e.g. negative videos, and are only logged at INFO level)."""
        if not any(getattr(self, f.name) for f in fields(self) if f.name != "lesion_free_frames"):
            logger.info(f"{source}: {self.lesion_free_frames} lesion-free frames")
            return
        parts = [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]
        logger.warning(f"{source}: repaired annotations ({', '.join(parts)})")


def check_box_numbers(box: Any, where: str) -> List[float]:
    """The 4 coordinates of a box as floats; anything but 4 finite numbers is an error."""
    if (
        not isinstance(box, (list, tuple))
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
        raise DatasetFormatError(f"{where}: box {box!r} must be 4 numbers")
    values = [float(v) for v in box]
    if not all(math.isfinite(v) for v in values):
        raise DatasetFormatError(f"{where}: box {list(box)} has a NaN or infinite coordinate")
    return values


def sanitize_xyxy(
    box: Sequence[float], width: int, height: int, counts: RepairCounts, where: str
) -> Optional[List[float]]:
    """Return ``box`` (x1, y1, x2, y2) with ordered corners, clipped to the frame, or None when it
    has no area left (counted in ``counts``). Non-numeric and NaN / inf coordinates are errors."""
    x1, y1, x2, y2 = check_box_numbers(box, where)
    if x2 < x1 or y2 < y1:
        counts.negative_size_boxes += 1
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    if clipped != [x1, y1, x2, y2]:
        counts.clipped_boxes += 1
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        counts.dropped_empty_boxes += 1
        return None
    return clipped
