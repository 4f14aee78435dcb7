"""A contact sheet of phantom frames: a grid with lesion boxes (green) and decoys (dashed
orange, never labelled) drawn, used by docs/en/phantom.md and to eyeball realism."""

from __future__ import annotations

import cv2
import numpy as np

from .video import RenderedFrame

LESION_COLOUR = (80, 220, 80)  # BGR
DECOY_COLOUR = (0, 150, 255)


def _dashed_rectangle(image, box, colour, dash=4):
    x, y, w, h = box
    corners = [(x, y), (x + w - 1, y), (x + w - 1, y + h - 1), (x, y + h - 1), (x, y)]
    for (xa, ya), (xb, yb) in zip(corners, corners[1:]):
        length = max(abs(xb - xa), abs(yb - ya))
        for s in range(0, length, 2 * dash):
            e = min(s + dash, length)
            p = (xa + (xb - xa) * s // max(length, 1), ya + (yb - ya) * s // max(length, 1))
            q = (xa + (xb - xa) * e // max(length, 1), ya + (yb - ya) * e // max(length, 1))
            cv2.line(image, p, q, colour, 1)


def annotate(frame: RenderedFrame, caption: str = "") -> np.ndarray:
    """The frame as BGR with its lesion boxes, decoy boxes and an optional caption."""
    image = cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR)
    for lesion in frame.lesions:
        x, y, w, h = lesion.bbox
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), LESION_COLOUR, 1)
    for decoy in frame.decoys:
        _dashed_rectangle(image, decoy.bbox, DECOY_COLOUR)
    if caption:
        cv2.putText(image, caption, (3, image.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return image


def contact_sheet(tiles: list[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Tiles (equal-sized BGR images) on a black grid, row-major."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return sheet
