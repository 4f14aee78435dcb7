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
    with open(path, "r", encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(
                f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None


def require_keys(entry: Any, keys: Sequence[str], where: str) -> None:
    """Raise naming ``where`` and the missing keys unless ``entry`` is a dict holding all of them."""
    if not isinstance(entry, dict):
        raise DatasetFormatError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DatasetFormatError(
            f"{where}: missing required key(s) {missing}; it has {sorted(entry)}"
        )


def check_files_exist(paths: Iterable[str], source: str) -> None:
    """Raise naming the first missing frame file (and how many are missing) of ``source``."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{source}: {len(missing)} frame file(s) do not exist, e.g. {missing[0]}"
        )


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
        parts = [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)
                 if getattr(self, f.name)]
        logger.warning(f"{source}: repaired annotations ({', '.join(parts)})")


def sanitize_xyxy(
    box: Sequence[float], width: int, height: int, counts: RepairCounts, where: str
) -> Optional[List[float]]:
    """Return ``box`` (x1, y1, x2, y2) with ordered corners, clipped to the frame, or None when it
    has no area left (counted in ``counts``). NaN / inf coordinates are an error."""
    values = [float(v) for v in box]
    if not all(math.isfinite(v) for v in values):
        raise DatasetFormatError(f"{where}: box {list(box)} has a NaN or infinite coordinate")
    x1, y1, x2, y2 = values
    if x2 < x1 or y2 < y1:
        counts.negative_size_boxes += 1
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height),
               min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    if clipped != [x1, y1, x2, y2]:
        counts.clipped_boxes += 1
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        counts.dropped_empty_boxes += 1
        return None
    return clipped
