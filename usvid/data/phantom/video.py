"""One phantom video: plan everything random up front, then render frame by frame.

A video is fully determined by its numpy Generator: `plan_video` draws the probe trajectory, the
tissue world, the lesions and the decoys; `render_frames` then images each frame (world maps
warped to the view, lesions and decoys painted in, speckle, scanner) and labels it with one
tight box per visible lesion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from .anatomy import TissueMap, build_tissue_map, db_to_intensity, tissue_attenuation_per_pixel
from .decoys import Decoy, sample_decoys
from .lesions import Lesion, sample_lesions
from .motion import ProbeTrajectory, sample_trajectory
from .render import ImagingSystem
from .shapes import RadialPatch
from .visibility import Visibility, assess_visibility, speckle_grain

# Speckle decorrelation: a small share of scatterers is redrawn every frame (tissue motion,
# breathing), plus a share proportional to the elevational move over the slice thickness.
BASE_DECORRELATION = 0.03
SLICE_THICKNESS = 0.04  # of image height
EDGE_SHADOW_NEPERS = 1.2  # intensity loss under a lateral wall (about 5 dB)
HALO_WIDTH = 0.18  # echogenic halo of a carcinoma, as a share of its size (>= 2 px)
VESSEL_WALL_GAIN = 3.0


@dataclass(frozen=True)
class LesionInstance:
    """A labelled lesion in a frame: box [x, y, w, h] tight to its mask (pixels, inside the
    frame) and the mask itself, cropped to the box."""

    instance_id: int
    kind: str
    bbox: tuple[int, int, int, int]
    mask: np.ndarray
    visibility: Visibility


@dataclass(frozen=True)
class DecoyInstance:
    """Where a decoy shows in a frame (for visualisation and tests; never labelled)."""

    decoy_id: int  # index in VideoPlan.decoys
    kind: str
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class RenderedFrame:
    """A frame, its labelled lesions, and the lesion slivers drawn in it but too faint or too
    small to see (visibility.py), which are not labelled."""

    image: np.ndarray
    lesions: tuple[LesionInstance, ...]
    decoys: tuple[DecoyInstance, ...]
    hidden_lesions: tuple[LesionInstance, ...] = ()


@dataclass(frozen=True)
class VideoPlan:
    category: str
    trajectory: ProbeTrajectory
    tissue: TissueMap
    lesions: list[Lesion]
    decoys: list[Decoy]


def plan_video(rng: np.random.Generator, category: str, num_frames: int, height: int, width: int) -> VideoPlan:
    trajectory = sample_trajectory(rng, num_frames, height, width)
    tissue = build_tissue_map(rng, height, trajectory.world_width, trajectory.world_height, trajectory.margin_y)
    lesions = sample_lesions(rng, category, trajectory, tissue)
    decoys = sample_decoys(rng, category, trajectory, tissue)
    return VideoPlan(category, trajectory, tissue, lesions, decoys)


def _box_of(mask: np.ndarray, y0: int, x0: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (int(x0 + c0), int(y0 + r0), int(c1 - c0), int(r1 - r0)), mask[r0:r1, c0:c1].copy()


def _windows_touch(a: RadialPatch, b: RadialPatch) -> bool:
    (ay, ax), (by, bx) = a.window, b.window
    return ay.start < by.stop and by.start < ay.stop and ax.start < bx.stop and bx.start < ax.stop


class _FrameRenderer:
    """Holds the per-video state that evolves over frames (the scatterer world)."""

    def __init__(self, plan: VideoPlan, rng: np.random.Generator):
        self.plan = plan
        self.rng = rng
        traj = plan.trajectory
        self.h, self.w = traj.height, traj.width
        self.scanner = ImagingSystem(self.h, self.w, rng)
        self.alpha0 = np.float32(tissue_attenuation_per_pixel(self.h))
        self.maps = np.ascontiguousarray(np.stack([plan.tissue.echo, plan.tissue.attenuation], -1))
        shape = (traj.world_height, traj.world_width)
        # Complex scatterers (one complex64 per world pixel: cheap to redraw in place) and the
        # fixed uniform draw that decides whether each one exists in weak tissue.
        self.scatterers = rng.standard_normal(shape + (2,), dtype=np.float32).view(np.complex64)[..., 0]
        self.existence = rng.random(shape, dtype=np.float32)
        self.grain = speckle_grain(self.h, self.w)

    def _decorrelate(self, t: int) -> None:
        """Redraw a share of the world's scatterers (partial speckle decorrelation)."""
        traj = self.plan.trajectory
        move = abs(traj.elevation[t] - traj.elevation[t - 1]) if t > 0 else 0.0
        share = min(1.0, BASE_DECORRELATION + move / (SLICE_THICKNESS * self.h))
        flat = self.scatterers.reshape(-1)
        picked = self.rng.integers(0, flat.size, int(share * flat.size))
        flat[picked] = self.rng.standard_normal(2 * len(picked), dtype=np.float32).view(np.complex64)

    def _warp(self, image: np.ndarray, t: int, interpolation: int) -> np.ndarray:
        return cv2.warpAffine(
            image,
            self.plan.trajectory.view_to_world(t),
            (self.w, self.h),
            flags=interpolation | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )

    def _paint_lesion(self, lesion: Lesion, patch: RadialPatch, echo, alpha) -> None:
        win, d = patch.window, patch.inside
        weight = np.clip(d / lesion.edge_softness + 0.5, 0.0, 1.0)
        e, a = echo[win], alpha[win]
        if lesion.halo_gain > 0:
            width = max(2.0, HALO_WIDTH * lesion.shape.semi_major)
            band = np.clip(1.0 + d / width, 0.0, 1.0) * (d < 0)
            e *= 1.0 + lesion.halo_gain * band
        e[...] = e * (1 - weight) + db_to_intensity(lesion.echo_db) * weight
        a[...] = a * (1 - weight) + self.alpha0 * lesion.attenuation_factor * weight
        if lesion.edge_shadows:  # refraction at the lateral walls: thin shadows below them
            rho = np.hypot(patch.dx, patch.dy) + 1e-6
            seeds = (np.abs(d) < 1.5) & (np.abs(patch.dy) / rho < 0.2)
            per_column = seeds.sum(axis=0, keepdims=True)
            a += seeds * (EDGE_SHADOW_NEPERS / np.maximum(per_column, 1))

    def _paint_decoy(self, decoy: Decoy, patch: RadialPatch, contrast: float, echo, alpha) -> None:
        win, d = patch.window, patch.inside
        weight = np.clip(d + 0.5, 0.0, 1.0) * contrast
        e, a = echo[win], alpha[win]
        if decoy.kind == "vessel":
            e *= 1.0 + VESSEL_WALL_GAIN * contrast * ((d > -1.5) & (d < 0.5))
        e[...] = e * (1 - weight) + db_to_intensity(decoy.echo_db) * weight
        a[...] = a * (1 - weight) + self.alpha0 * decoy.attenuation_factor * weight

    def render(self, t: int) -> RenderedFrame:
        traj = self.plan.trajectory
        self._decorrelate(t)
        as_channels = self.scatterers.view(np.float32).reshape(self.scatterers.shape + (2,))
        scatterers = self._warp(as_channels, t, cv2.INTER_NEAREST)
        existence = self._warp(self.existence, t, cv2.INTER_NEAREST)
        if traj.contact[t] <= 0:
            return RenderedFrame(self.scanner.lost_contact(scatterers, existence), (), ())
        maps = self._warp(self.maps, t, cv2.INTER_LINEAR)
        echo, alpha = maps[..., 0].copy(), maps[..., 1].copy()

        lesion_patches = []
        for lesion in self.plan.lesions:
            margin = max(2.0, HALO_WIDTH * lesion.shape.semi_major) + 2
            patch = lesion.rasterise_at(traj, t, margin)
            if patch is not None:
                lesion_patches.append((lesion, patch))
        decoy_boxes = []
        for decoy_id, decoy in enumerate(self.plan.decoys):
            patch, state = decoy.rasterise_at(traj, t)
            if patch is None or any(_windows_touch(patch, p) for _, p in lesion_patches):
                continue
            self._paint_decoy(decoy, patch, state.contrast, echo, alpha)
            if (patch.inside > 0).any():
                box, _ = _box_of(patch.inside > 0, patch.y0, patch.x0)
                decoy_boxes.append(DecoyInstance(decoy_id, decoy.kind, box))
        for lesion, patch in lesion_patches:
            self._paint_lesion(lesion, patch, echo, alpha)
        image = self.scanner.b_mode(echo, alpha, scatterers, existence, float(traj.contact[t]))
        visible, hidden = self._label(image, lesion_patches, t)
        return RenderedFrame(image, visible, tuple(decoy_boxes), hidden)

    def _label(self, image: np.ndarray, lesion_patches, t: int):
        """Splits the drawn lesion cross-sections into the visible ones (labelled) and the
        slivers no annotator could see (visibility.py)."""
        masks = []
        for _, patch in lesion_patches:
            mask = np.zeros((self.h, self.w), bool)
            mask[patch.window] = patch.inside > 0
            masks.append(mask)
        # Every lesion's pixels: a lesion's own ring lies outside its own mask already, so the union
        # serves as "the other lesions" for each of them.
        occupied = np.logical_or.reduce(masks) if masks else None
        visible, hidden = [], []
        for (lesion, patch), mask in zip(lesion_patches, masks):
            if not mask.any():
                continue
            area = lesion.cross_section_area(self.plan.trajectory, t)
            measured = assess_visibility(image, mask, area, occupied, self.grain)
            box, cropped = _box_of(patch.inside > 0, patch.y0, patch.x0)
            instance = LesionInstance(lesion.instance_id, lesion.kind, box, cropped, measured)
            (visible if measured.visible else hidden).append(instance)
        return tuple(visible), tuple(hidden)


def render_frames(plan: VideoPlan, rng: np.random.Generator) -> Iterator[RenderedFrame]:
    """Frames in order; a frozen frame repeats the frame it froze on (image and labels)."""
    renderer = _FrameRenderer(plan, rng)
    frame = None
    for t in range(plan.trajectory.num_frames):
        # Frozen segments always repeat the frame just before them, the last one rendered.
        if plan.trajectory.source_frame[t] == t:
            frame = renderer.render(t)
        yield frame


def video_rngs(seed: int, video_index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(plan rng, render rng) of one video: independent of every other video and of the worker
    that renders it, which makes the dataset byte-identical whatever the worker count."""
    plan_seq, render_seq = np.random.SeedSequence([seed, video_index]).spawn(2)
    return np.random.default_rng(plan_seq), np.random.default_rng(render_seq)
