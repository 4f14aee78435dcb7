"""Probe motion at 30 fps: which part of the tissue world each frame shows.

The tissue is a 2-D world map larger than the image; the probe slides laterally over it, tilts
slightly, presses in and out, and sweeps in elevation (the out-of-plane direction, which is what
makes 3-D lesions grow, shrink, appear and disappear). Two recording artefacts of real clinical
videos are planned here too: frozen segments (the operator pressed freeze: identical frames) and
lost-contact frames (the probe lifts off the skin: the image goes dark).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import smooth_curve
from .params import FPS

MAX_ROTATION_DEG = 4.0
FREEZE_PROBABILITY = 0.3
LOST_CONTACT_PROBABILITY = 0.25
PARTIAL_CONTACT_GAIN = 0.4  # the frame just before / after a lift-off: coupling is poor


@dataclass(frozen=True)
class ProbeTrajectory:
    """Per-frame probe pose, in world pixels (world x = lateral, world y = depth + margin_y).

    lateral[t], axial[t]: world position of the view's top-left corner before rotation;
    rotation[t]: in-plane tilt (radians) about the view centre; elevation[t]: out-of-plane
    position in pixels; source_frame[t]: the frame actually shown (== t except in frozen
    segments); contact[t]: 1 = good coupling, 0 = probe lifted off, in between = poor coupling.
    """

    height: int
    width: int
    world_height: int
    world_width: int
    margin_y: int
    lateral: np.ndarray
    axial: np.ndarray
    rotation: np.ndarray
    elevation: np.ndarray
    source_frame: np.ndarray
    contact: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.lateral)

    def is_live(self, t: int) -> bool:
        """True when frame t is freshly imaged with full contact (not frozen, not lifted)."""
        return self.source_frame[t] == t and self.contact[t] >= 1.0

    def view_to_world(self, t: int) -> np.ndarray:
        """2x3 affine matrix mapping view pixel (x, y) to world pixel (x, y) at frame t."""
        cos, sin = np.cos(self.rotation[t]), np.sin(self.rotation[t])
        rot = np.array([[cos, -sin], [sin, cos]])
        centre = np.array([(self.width - 1) / 2.0, (self.height - 1) / 2.0])
        offset = np.array([self.lateral[t], self.axial[t] + self.margin_y])
        return np.hstack([rot, (centre + offset - rot @ centre)[:, None]])

    def world_to_view(self, t: int, points: np.ndarray) -> np.ndarray:
        """World points (..., 2) as view points at frame t."""
        matrix = self.view_to_world(t)
        rot, shift = matrix[:, :2], matrix[:, 2]
        return (np.asarray(points, dtype=np.float64) - shift) @ rot  # rot is orthonormal


def _segment_start(rng: np.random.Generator, num_frames: int, length: int, taken: np.ndarray) -> int | None:
    """A start frame (>= 1) for a segment of `length` frames that avoids frames in `taken`."""
    starts = [s for s in range(1, num_frames - length) if not taken[max(0, s - 1) : s + length + 1].any()]
    return int(rng.choice(starts)) if starts else None


def sample_trajectory(rng: np.random.Generator, num_frames: int, height: int, width: int) -> ProbeTrajectory:
    """Draws one smooth probe trajectory and the world size it needs."""
    seconds = np.arange(num_frames) / FPS
    side = max(height, width)

    lateral_speed = rng.uniform(0.0, 0.3) * width * rng.choice([-1.0, 1.0])  # px / s
    lateral = lateral_speed * seconds + 0.05 * width * smooth_curve(rng, seconds, 1.5, 6.0)
    axial = 0.012 * height * smooth_curve(rng, seconds, 1.0, 4.0)
    rotation = np.deg2rad(rng.uniform(1.0, MAX_ROTATION_DEG)) * smooth_curve(rng, seconds, 2.0, 8.0)
    sweep_speed = rng.uniform(0.06, 0.2) * height * rng.choice([-1.0, 1.0])
    elevation = sweep_speed * seconds + 0.03 * height * smooth_curve(rng, seconds, 1.0, 4.0)

    # Rotation and axial motion reach this far past the view; the world map covers it.
    margin = int(np.ceil(np.sin(np.deg2rad(MAX_ROTATION_DEG)) * side + 0.02 * height)) + 2
    lateral = lateral - lateral.min() + margin
    world_width = int(np.ceil(lateral.max())) + width + margin
    world_height = height + 2 * margin

    source_frame = np.arange(num_frames)
    contact = np.ones(num_frames)
    taken = np.zeros(num_frames, dtype=bool)
    if num_frames >= 12 and rng.random() < FREEZE_PROBABILITY:
        length = int(rng.integers(4, max(5, num_frames // 6) + 1))
        start = _segment_start(rng, num_frames, length, taken)
        if start is not None:
            source_frame[start : start + length] = start - 1
            taken[start - 1 : start + length] = True
    if num_frames >= 12 and rng.random() < LOST_CONTACT_PROBABILITY:
        length = int(rng.integers(2, max(3, min(7, num_frames // 6)) + 1))
        start = _segment_start(rng, num_frames, length + 2, taken)
        if start is not None:
            contact[start] = contact[start + length + 1] = PARTIAL_CONTACT_GAIN
            contact[start + 1 : start + length + 1] = 0.0
    return ProbeTrajectory(
        height, width, world_height, world_width, margin, lateral, axial, rotation, elevation, source_frame, contact
    )
