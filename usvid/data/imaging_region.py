"""Where the ultrasound image is in a scanner export: the pixels that change over time.

Scanner screen captures carry UI around the image sector (text, rulers, a colour bar, a logo)
that stays still while the image moves with the probe and the speckle. The imaging region is
the bounding box of the largest connected area of pixels whose grey level varies over the
video; running the detector on it alone keeps the UI out of the model's view, and the boxes are
shifted back into the full frame.
"""

import logging
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["find_imaging_region", "MAX_SAMPLED_FRAMES"]

logger = logging.getLogger(__name__)

MAX_SAMPLED_FRAMES = 64  # frames spread over the video that the variation is measured on
MIN_VARIATION = 4  # grey levels: a pixel varying less is static UI (or compression noise)


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def find_imaging_region(frames: Sequence[np.ndarray]) -> Optional[Tuple[int, int, int, int]]:
    """``(x1, y1, x2, y2)`` (x2, y2 exclusive) of the moving image in ``frames``, or None when
    nothing moves (a single frame, a frozen cine): then the whole frame is used."""
    if len(frames) < 2:
        return None
    picks = np.unique(np.linspace(0, len(frames) - 1, min(MAX_SAMPLED_FRAMES, len(frames))).round().astype(int))
    stack = np.stack([_gray(frames[i]) for i in picks]).astype(np.int16)
    moving = ((stack.max(axis=0) - stack.min(axis=0)) >= MIN_VARIATION).astype(np.uint8)
    height, width = moving.shape
    side = max(3, int(round(0.02 * min(height, width))) | 1)  # close small static holes (e.g. a caliper mark)
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    if w * h >= 0.98 * height * width:
        return None
    logger.info(f"imaging region: x {x}..{x + w}, y {y}..{y + h} of a {width}x{height} frame")
    return x, y, x + w, y + h
