"""Decoys: unlabelled lesion-look-alikes that give a single-frame detector its false positives.

In any one frame a decoy is a dark blob a detector could take for a lesion; across neighbouring
frames it betrays itself, which is exactly what a temporal detector can learn:

* fat_lobule: a hypoechoic oval that, frame by frame, flattens and stretches into a band and
  fades (a fat lobule seen end-on for a moment, then along its length);
* vessel: an anechoic circle with bright walls and posterior enhancement that pulsates and slides
  across the tissue at its own speed (a vessel crossing the scan plane obliquely);
* shadow: a dark blob heading a dark acoustic shadow (refraction behind a ligament) that jumps
  and flickers from frame to frame.

A decoy lives for a few frames only (`num_frames`), fading in and out. Decoys are never labelled.
Their sizes overlap the lesions' (lesions.py), so size alone does not tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .anatomy import TissueMap
from .motion import ProbeTrajectory
from .shapes import ContourShape, RadialPatch, rasterise

DECOY_KINDS = ("fat_lobule", "vessel", "shadow")
DECOYS_PER_FRAME = 0.03  # expected decoys per video frame (about 2.4 in 80 frames)


@dataclass(frozen=True)
class DecoyState:
    """How a decoy looks in one frame: view centre, stretch, rotation and contrast (0..1)."""

    centre: np.ndarray
    scale_xy: tuple[float, float]
    rotation: float
    contrast: float


@dataclass(frozen=True)
class Decoy:
    kind: str
    shape: ContourShape
    centre_world: tuple[float, float]
    start_frame: int
    num_frames: int
    drift: tuple[float, float]  # world px / frame: motion inconsistent with the tissue
    jitter: np.ndarray  # (num_frames, 2) per-frame jumps in px (shadows)
    pulse_phase: float
    echo_db: float
    attenuation_factor: float

    def state_at(self, trajectory: ProbeTrajectory, t: int) -> Optional[DecoyState]:
        """The decoy in frame t, or None outside its short life."""
        k = t - self.start_frame
        if not 0 <= k < self.num_frames:
            return None
        u = (k + 0.5) / self.num_frames  # 0..1 across the decoy's life
        world = np.add(self.centre_world, np.multiply(self.drift, k)) + self.jitter[k]
        centre = trajectory.world_to_view(t, world)
        contrast = float(np.sin(np.pi * u) ** 0.6)
        sx = sy = 1.0
        if self.kind == "fat_lobule":  # lesion-like at mid-life, a flat band at both ends
            stretch = 1.0 + 2.5 * abs(2 * u - 1) ** 1.5
            sx, sy = stretch, 1.0 / np.sqrt(stretch)
        elif self.kind == "vessel":  # pulsation at ~1.2 Hz
            sx = sy = 1.0 + 0.12 * np.sin(2 * np.pi * 1.2 * k / 30.0 + self.pulse_phase)
        else:  # shadow: flickers
            contrast *= 0.6 + 0.4 * abs(np.sin(3.1 * k + self.pulse_phase))
        return DecoyState(centre, (sx, sy), float(trajectory.rotation[t]), contrast)

    def rasterise_at(
        self, trajectory: ProbeTrajectory, t: int, margin: float = 2.0
    ) -> tuple[Optional[RadialPatch], Optional[DecoyState]]:
        state = self.state_at(trajectory, t)
        if state is None:
            return None, None
        patch = rasterise(
            self.shape, state.centre, state.scale_xy, state.rotation, trajectory.height, trajectory.width, margin
        )
        return patch, state


def _sample_one(rng, kind, trajectory: ProbeTrajectory, tissue: TissueMap) -> Decoy:
    h, w, n = trajectory.height, trajectory.width, trajectory.num_frames
    side = min(h, w)
    life = int(min(n, rng.integers(*{"fat_lobule": (5, 13), "vessel": (6, 16), "shadow": (3, 9)}[kind])))
    start = int(rng.integers(0, n - life + 1))
    anchor = start + life // 2
    view_x = rng.uniform(0.15, 0.85) * w
    world_x = (trajectory.view_to_world(anchor) @ np.array([view_x, 0.0, 1.0]))[0]
    fat_bottom, gland_bottom = tissue.layer_depths(world_x)
    jitter = np.zeros((life, 2))
    drift = (0.0, 0.0)
    pulse = rng.uniform(0, 2 * np.pi)
    if kind == "fat_lobule":
        radius = rng.uniform(0.06, 0.14) * side
        shape = ContourShape(radius, radius * rng.uniform(0.6, 0.85), rng.uniform(-0.2, 0.2))
        view_y = fat_bottom + rng.uniform(1.0, 2.0) * radius  # a fat lobule inside the gland
        echo_db, attenuation = rng.uniform(-22.0, -16.0), 0.8
    elif kind == "vessel":
        radius = rng.uniform(0.035, 0.075) * side
        shape = ContourShape(radius, radius * rng.uniform(0.85, 1.0))
        view_y = rng.uniform(fat_bottom * 0.6, (fat_bottom + gland_bottom) / 2)
        speed = rng.uniform(0.006, 0.015) * side * rng.choice([-1.0, 1.0])
        drift = (speed, rng.uniform(-0.3, 0.3) * abs(speed))
        echo_db, attenuation = -42.0, 0.05
    else:
        radius = rng.uniform(0.06, 0.12) * side
        shape = ContourShape(
            radius,
            radius * rng.uniform(0.7, 1.0),
            0.0,
            harmonic_orders=np.array([3.0, 5.0]),
            harmonic_amplitudes=rng.uniform(0.05, 0.12, 2),
            harmonic_phases=rng.uniform(0, 2 * np.pi, 2),
        )
        view_y = rng.uniform(fat_bottom, (fat_bottom + gland_bottom) / 2)
        jitter = rng.normal(0.0, 0.03 * side, (life, 2))
        echo_db, attenuation = rng.uniform(-26.0, -20.0), rng.uniform(3.0, 5.0)
    centre = trajectory.view_to_world(anchor) @ np.array([view_x, view_y, 1.0])
    start_world = centre[:2] - np.multiply(drift, life // 2)
    return Decoy(
        kind,
        shape,
        (float(start_world[0]), float(start_world[1])),
        start,
        life,
        drift,
        jitter,
        pulse,
        float(echo_db),
        float(attenuation),
    )


def sample_decoys(
    rng: np.random.Generator, category: str, trajectory: ProbeTrajectory, tissue: TissueMap
) -> list[Decoy]:
    """A few decoys per video; lesion-free (normal) videos get one more, because they are where
    a detector must learn to stay silent."""
    count = int(rng.poisson(DECOYS_PER_FRAME * trajectory.num_frames)) + (category == "normal")
    return [
        _sample_one(rng, DECOY_KINDS[int(rng.integers(len(DECOY_KINDS)))], trajectory, tissue) for _ in range(count)
    ]
