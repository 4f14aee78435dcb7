"""Star-shaped outlines r(phi) and their rasterisation into a frame.

Lesions and decoys share this: an ellipse whose radius is modulated by low-order harmonics
(lobulated borders) and narrow radial spikes (spiculated borders). Rasterising returns a signed
radial distance to the border over a small window, so callers derive the hard mask (the label),
a soft edge, an echogenic halo band or edge-shadow seeds from one computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class ContourShape:
    """r(phi) = ellipse(phi) * (1 + sum_k a_k cos(k phi + p_k)) * (1 + sum_j spike_j(phi)).

    Angles are in the object's own frame; `orientation` turns the ellipse's major axis.
    """

    semi_major: float
    semi_minor: float
    orientation: float = 0.0
    harmonic_orders: np.ndarray = field(default_factory=lambda: np.zeros(0))
    harmonic_amplitudes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    harmonic_phases: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_angles: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_amplitudes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_widths: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def max_radius(self) -> float:
        """An upper bound of r(phi) over all angles (sizes the raster window)."""
        lobes = 1.0 + np.abs(self.harmonic_amplitudes).sum()
        spikes = 1.0 + (self.spike_amplitudes.max() if len(self.spike_amplitudes) else 0.0)
        return float(self.semi_major * lobes * spikes)

    def radius(self, phi: np.ndarray, phase_shift: float = 0.0) -> np.ndarray:
        """r(phi); phase_shift turns the harmonics, so a 3-D lesion's outline morphs smoothly
        as the probe sweeps through it."""
        psi = phi - self.orientation
        a, b = self.semi_major, self.semi_minor
        r = a * b / np.sqrt((b * np.cos(psi)) ** 2 + (a * np.sin(psi)) ** 2)
        if len(self.harmonic_orders):
            wave = np.cos(self.harmonic_orders[:, None, None] * phi + self.harmonic_phases[:, None, None] + phase_shift)
            r = r * (1.0 + np.tensordot(self.harmonic_amplitudes, wave, axes=1))
        if len(self.spike_angles):
            offset = np.angle(np.exp(1j * (phi[None] - self.spike_angles[:, None, None])))
            tent = np.clip(1.0 - np.abs(offset) / self.spike_widths[:, None, None], 0.0, None)
            r = r * (1.0 + np.tensordot(self.spike_amplitudes, tent**1.5, axes=1))
        return r


@dataclass(frozen=True)
class RadialPatch:
    """A window [y0:y0+h, x0:x0+w] of the frame around a rasterised outline.

    inside: signed radial distance to the border in pixels (> 0 inside, < 0 outside);
    dx, dy: offsets of each pixel from the outline centre (view pixels).
    """

    y0: int
    x0: int
    inside: np.ndarray
    dx: np.ndarray
    dy: np.ndarray

    @property
    def window(self) -> tuple[slice, slice]:
        h, w = self.inside.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def rasterise(
    shape: ContourShape,
    centre_xy,
    scale_xy,
    rotation: float,
    height: int,
    width: int,
    margin: float = 2.0,
    phase_shift: float = 0.0,
) -> Optional[RadialPatch]:
    """The outline scaled by (sx, sy) in view axes and turned by `rotation` (the object's frame
    relative to the view), centred at `centre_xy`; None when the window misses the frame."""
    sx, sy = scale_xy
    if sx <= 0 or sy <= 0:
        return None
    cx, cy = centre_xy
    reach_x = shape.max_radius * sx + margin + 1
    reach_y = shape.max_radius * sy + margin + 1
    x0, x1 = max(0, int(np.floor(cx - reach_x))), min(width, int(np.ceil(cx + reach_x)) + 1)
    y0, y1 = max(0, int(np.floor(cy - reach_y))), min(height, int(np.ceil(cy + reach_y)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    ux, uy = dx / sx, dy / sy
    rho = np.sqrt(ux * ux + uy * uy)
    phi = np.arctan2(uy, ux) + rotation
    inside = (shape.radius(phi, phase_shift) - rho) * np.sqrt(sx * sy)
    dx, dy = np.broadcast_arrays(dx, dy)
    return RadialPatch(y0, x0, inside.astype(np.float32), dx, dy)
