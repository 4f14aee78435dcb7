"""When a sonographer can see a lesion: the rule that decides which cross-sections are labelled.

A real annotator boxes a lesion when it stands out of the speckle, not when the probe is
geometrically inside it. The rule uses three quantities measured on the rendered frame:

* its size in speckle grains, N = (lesion pixels inside the frame) / (area of one grain). The
  grain is measured, not assumed: `speckle_grain` images uniform tissue through this scanner and
  takes the full width at half maximum of the speckle's autocorrelation, along depth and across;
* its contrast against the local speckle, C = |mean(lesion) - mean(ring)| / std(ring), in grey
  levels of the displayed frame, where the ring is the tissue just outside the lesion;
* how much of it is in the frame: the in-frame share of the cross-section's area.

A cross-section is visible when at least MIN_IN_FRAME_SHARE (a quarter) of it is in the frame
and its detectability d = C * sqrt(N) reaches the Rose criterion ROSE_THRESHOLD. A lesion cut by
the frame's edge stays recognisable while a fair part of its outline shows; under a quarter it is
a dark wedge at the border, like an edge shadow. Why the Rose criterion: the mean grey level
of a patch of N independent grains fluctuates with standard deviation std / sqrt(N), so a lesion
of detectability d is d standard deviations of that fluctuation away from its surroundings. A
256x256 frame holds about 3,000 grains (21 px each), so about 3,000 / N independent patches of
the lesion's size: at d = 3 (a one-sided Gaussian tail of 1.3e-3) about one of them per frame is
as dark as the lesion by chance, at d = 5 (Rose's classic threshold; tail 2.9e-7) one in a few
thousand frames. A lesion under the limit is thus indistinguishable from a dark speckle
fluctuation. The threshold was
fixed from this argument before any detector was trained on the labels (docs/en/phantom.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .anatomy import tissue_attenuation_per_pixel
from .render import ImagingSystem

ROSE_THRESHOLD = 5.0
MIN_IN_FRAME_SHARE = 0.25
# The reference tissue for the grain measurement: uniform gland-level echo (0 dB), the
# nominal attenuation, and a fixed draw so the measurement is the same on every call.
_GRAIN_MEASUREMENT_SEED = 20261206
# Pixels between the lesion's outline and the ring that measures its surroundings: the blurred
# edge (edge softness plus display smoothing) belongs to neither.
RING_GAP_PX = 2


@dataclass(frozen=True)
class SpeckleGrain:
    """Full widths at half maximum of the speckle autocorrelation, in pixels."""

    axial: float
    lateral: float

    @property
    def area(self) -> float:
        """Area of the half-maximum ellipse: the share of the image one independent grain covers."""
        return float(np.pi / 4.0 * self.axial * self.lateral)


def _half_maximum_width(profile: np.ndarray) -> float:
    """Full width at half maximum of a one-sided autocorrelation profile (profile[0] == 1)."""
    below = int(np.argmax(profile < 0.5))
    upper, lower = profile[below - 1], profile[below]
    return float(2.0 * (below - 1 + (upper - 0.5) / (upper - lower)))


@functools.lru_cache(maxsize=16)
def speckle_grain(height: int, width: int) -> SpeckleGrain:
    """Measures the speckle grain of this scanner at a frame size: one uniform-tissue frame, each
    depth row normalised (removes the depth gain), then the autocorrelation's half widths."""
    rng = np.random.default_rng(_GRAIN_MEASUREMENT_SEED)
    scanner = ImagingSystem(height, width, rng)
    scatterers = rng.standard_normal((height, width, 2), dtype=np.float32)
    existence = rng.random((height, width), dtype=np.float32)
    echo = np.ones((height, width), np.float32)
    attenuation = np.full((height, width), tissue_attenuation_per_pixel(height), np.float32)
    image = scanner.b_mode(echo, attenuation, scatterers, existence).astype(np.float64)
    core = image[height // 4 : 3 * height // 4, width // 8 : 7 * width // 8]
    core = (core - core.mean(axis=1, keepdims=True)) / np.maximum(core.std(axis=1, keepdims=True), 1e-6)
    spectrum = np.fft.fft2(core, s=(2 * core.shape[0], 2 * core.shape[1]))
    autocorrelation = np.real(np.fft.ifft2(np.abs(spectrum) ** 2))
    autocorrelation /= autocorrelation[0, 0]
    return SpeckleGrain(_half_maximum_width(autocorrelation[:, 0]), _half_maximum_width(autocorrelation[0, :]))


@dataclass(frozen=True)
class Visibility:
    """The measured quantities of one lesion cross-section in one frame, and the verdict."""

    in_frame_share: float
    grains: float
    contrast: float

    @property
    def detectability(self) -> float:
        return float(self.contrast * np.sqrt(self.grains))

    @property
    def visible(self) -> bool:
        return self.in_frame_share >= MIN_IN_FRAME_SHARE and self.detectability >= ROSE_THRESHOLD


def _ellipse_kernel(grain: SpeckleGrain, scale: float) -> np.ndarray:
    size = (2 * int(np.ceil(scale * grain.lateral / 2)) + 1, 2 * int(np.ceil(scale * grain.axial / 2)) + 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, size)


def assess_visibility(
    image: np.ndarray, mask: np.ndarray, full_area: float, occupied: np.ndarray, grain: SpeckleGrain
) -> Visibility:
    """Measures a lesion cross-section on the displayed frame.

    image: the uint8 frame; mask: bool (H, W), the cross-section's pixels inside the frame;
    full_area: the whole cross-section's area in pixels (inside the frame or not); occupied: bool
    (H, W), lesion pixels (this lesion's may be among them), kept out of the surrounding ring.
    """
    area = int(mask.sum())
    if area == 0:
        return Visibility(0.0, 0.0, 0.0)
    as_u8 = mask.astype(np.uint8)
    gap = cv2.dilate(as_u8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_GAP_PX + 1,) * 2))
    outer = cv2.dilate(gap, _ellipse_kernel(grain, 2.0))
    ring = (outer > 0) & (gap == 0) & ~occupied
    core = cv2.erode(as_u8, np.ones((3, 3), np.uint8)) > 0
    inside = image[core] if core.sum() >= 4 else image[mask]
    if ring.sum() < 4:
        return Visibility(min(1.0, area / full_area), area / grain.area, 0.0)
    surround = image[ring].astype(np.float64)
    contrast = abs(float(inside.mean()) - surround.mean()) / max(surround.std(), 1.0)
    return Visibility(min(1.0, area / max(full_area, 1e-6)), area / grain.area, contrast)
