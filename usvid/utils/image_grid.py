"""Lay equal-sized images out as one grid image (contact sheets of videos)."""

from typing import Sequence

import numpy as np

__all__ = ["tile_grid"]


def tile_grid(tiles: Sequence[np.ndarray], columns: int, gap: int = 2, background: int = 0) -> np.ndarray:
    """``tiles`` (equal-sized HxWx3 uint8 images) row-major on a grid of ``columns`` columns,
    ``gap`` pixels of ``background`` grey between neighbours (none around the border)."""
    if not len(tiles):
        raise ValueError("tile_grid needs at least one tile")
    height, width = tiles[0].shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), background, np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        sheet[top : top + height, left : left + width] = tile
    return sheet
