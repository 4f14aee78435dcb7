"""Smooth random curves and fields: the shared source of every slow variation in the phantom
(layer boundaries, probe motion, tissue heterogeneity). Kept in one place so each module draws
its randomness the same way and the look stays consistent when parameters change."""

from __future__ import annotations

import cv2
import numpy as np


def smooth_curve(
    rng: np.random.Generator, positions: np.ndarray, min_period: float, max_period: float, num_harmonics: int = 4
) -> np.ndarray:
    """A zero-mean smooth curve sampled at `positions`, scaled so its largest |value| is 1.

    A sum of sinusoids whose periods are drawn in [min_period, max_period] (same unit as
    positions) with random phases and 1/k-decaying amplitudes: smooth, never periodic-looking.
    """
    positions = np.asarray(positions, dtype=np.float64)
    periods = rng.uniform(min_period, max_period, size=num_harmonics)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=num_harmonics)
    weights = rng.uniform(0.5, 1.0, size=num_harmonics) / np.arange(1, num_harmonics + 1)
    curve = (weights[:, None] * np.sin(2.0 * np.pi * positions[None, :] / periods[:, None] + phases[:, None])).sum(
        axis=0
    )
    curve -= curve.mean()
    peak = np.abs(curve).max()
    return curve / peak if peak > 0 else curve


def smooth_field(
    rng: np.random.Generator, height: int, width: int, cell_height: float, cell_width: float
) -> np.ndarray:
    """A zero-mean, unit-std smooth 2-D field whose blobs measure about cell_height x cell_width
    pixels (anisotropic cells give the horizontally streaky texture of breast tissue).

    Bicubic up-sampling of a coarse Gaussian grid: O(height*width), no FFT needed.
    """
    grid_h = max(2, int(np.ceil(height / max(cell_height, 1.0))) + 1)
    grid_w = max(2, int(np.ceil(width / max(cell_width, 1.0))) + 1)
    coarse = rng.standard_normal((grid_h, grid_w)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field
