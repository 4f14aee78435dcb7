"""Lesions: 3-D masses the probe sweeps through, drawn by the clinical cues that tell them apart.

Each lesion is an ellipsoid-like mass in the tissue world: its in-plane outline (a ContourShape)
is scaled by the elevational cross-section sqrt(1 - (dz / rz)^2), so it grows, shrinks, appears
and disappears as the probe sweeps, and its outline morphs slowly with elevation. Kinds:

* cyst (benign): anechoic, oval, smooth thin wall, posterior enhancement (fluid barely
  attenuates), thin lateral edge shadows;
* fibroadenoma (benign): hypoechoic, oval and parallel to the skin, gently lobulated, mild
  enhancement or none;
* carcinoma (malignant): markedly hypoechoic, irregular (angular lobes) or spiculated, often
  taller than wide, echogenic halo, posterior acoustic shadowing.

Sizes follow breast ultrasound video, where a lesion usually fills a sizeable part of the 4-5 cm
field of view: the largest in-plane diameter is log-normal with a median of 12 mm (90 % between
about 7 and 21 mm), kept within 5-25 mm, in a frame whose depth spans IMAGE_DEPTH_MM (40 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from .anatomy import TissueMap
from .motion import ProbeTrajectory
from .shapes import ContourShape, RadialPatch, rasterise
from .speckle import IMAGE_DEPTH_MM

MEDIAN_DIAMETER_MM, DIAMETER_LOG_SIGMA = 12.0, 0.35
MIN_DIAMETER_MM, MAX_DIAMETER_MM = 5.0, 25.0
MAX_DIAMETER_SHARE = 0.65  # of the shorter frame side, for frames wider than deep
MIN_VISIBLE_SCALE = 0.2  # thinner elevational slices than this are not drawn
EXTRA_LESION_PROBABILITIES = (0.72, 0.2, 0.08)  # 1, 2 or 3 lesions per lesion video


@dataclass(frozen=True)
class Lesion:
    instance_id: int
    kind: str
    shape: ContourShape
    centre_world: tuple[float, float]
    elevation_centre: float
    elevation_radius: float
    echo_db: float
    attenuation_factor: float  # relative to average soft tissue
    halo_gain: float  # echogenic rim brightness factor (0: none)
    edge_softness: float  # pixels
    edge_shadows: bool
    morph_rate: float  # outline phase change across the elevational extent

    def scale_at(self, elevation: float) -> float:
        """Elevational cross-section scale (0 when the probe is outside the lesion)."""
        u = (elevation - self.elevation_centre) / self.elevation_radius
        return float(np.sqrt(1.0 - u * u)) if abs(u) < 1.0 else 0.0

    def cross_section_area(self, trajectory: ProbeTrajectory, t: int) -> float:
        """Area in pixels of the whole cross-section in frame t, inside the frame or not."""
        scale = self.scale_at(trajectory.elevation[t])
        u = (trajectory.elevation[t] - self.elevation_centre) / self.elevation_radius
        phi = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
        radius = self.shape.radius(phi, self.morph_rate * u)
        return float(np.pi * np.mean(radius**2) * scale * scale)

    def rasterise_at(self, trajectory: ProbeTrajectory, t: int, margin: float = 2.0) -> Optional[RadialPatch]:
        """The lesion's cross-section in frame t, or None when it is not visible there."""
        scale = self.scale_at(trajectory.elevation[t])
        if scale < MIN_VISIBLE_SCALE:
            return None
        centre = trajectory.world_to_view(t, np.array(self.centre_world))
        u = (trajectory.elevation[t] - self.elevation_centre) / self.elevation_radius
        return rasterise(
            self.shape,
            centre,
            (scale, scale),
            float(trajectory.rotation[t]),
            trajectory.height,
            trajectory.width,
            margin,
            self.morph_rate * u,
        )


def sample_diameter(rng: np.random.Generator, height: int, width: int) -> float:
    """A lesion's largest in-plane diameter in pixels (module docstring: the distribution)."""
    millimetres = np.clip(
        MEDIAN_DIAMETER_MM * np.exp(DIAMETER_LOG_SIGMA * rng.standard_normal()), MIN_DIAMETER_MM, MAX_DIAMETER_MM
    )
    return float(min(millimetres * height / IMAGE_DEPTH_MM, MAX_DIAMETER_SHARE * min(height, width)))


def _harmonics(rng, orders, amplitude):
    orders = np.asarray(orders, dtype=np.float64)
    return dict(
        harmonic_orders=orders,
        harmonic_amplitudes=amplitude * rng.uniform(0.4, 1.0, len(orders)) / np.sqrt(orders),
        harmonic_phases=rng.uniform(0, 2 * np.pi, len(orders)),
    )


def _sample_kind_shape(rng, kind: str, radius: float) -> tuple[ContourShape, dict]:
    """The outline and the echo properties that characterise each lesion kind."""
    if kind == "cyst":
        aspect = rng.uniform(0.55, 0.9)
        shape = ContourShape(radius, radius * aspect, rng.uniform(-0.2, 0.2))
        props = dict(
            echo_db=-45.0, attenuation_factor=0.05, halo_gain=0.0, edge_softness=0.8, edge_shadows=True, morph_rate=0.0
        )
    elif kind == "fibroadenoma":
        aspect = rng.uniform(0.5, 0.8)
        shape = ContourShape(
            radius, radius * aspect, rng.uniform(-0.25, 0.25), **_harmonics(rng, [2, 3, 4], rng.uniform(0.0, 0.12))
        )
        props = dict(
            echo_db=rng.uniform(-24.0, -17.0),
            attenuation_factor=rng.uniform(0.4, 0.9),
            halo_gain=0.0,
            edge_softness=1.2,
            edge_shadows=rng.random() < 0.5,
            morph_rate=rng.uniform(0.3, 1.0),
        )
    elif kind == "carcinoma":
        aspect = rng.uniform(0.7, 1.0)
        orientation = np.pi / 2 + rng.uniform(-0.5, 0.5) if rng.random() < 0.5 else rng.uniform(-0.4, 0.4)
        spikes = {}
        if rng.random() < 0.6:  # spiculated; otherwise irregular (angular, microlobulated)
            n = int(rng.integers(8, 17))
            spikes = dict(
                spike_angles=rng.uniform(0, 2 * np.pi, n),
                spike_amplitudes=rng.uniform(0.3, 0.7, n),
                spike_widths=rng.uniform(0.04, 0.1, n),
            )
        shape = ContourShape(
            radius,
            radius * aspect,
            orientation,
            **_harmonics(rng, [3, 4, 5, 6, 8, 11], rng.uniform(0.2, 0.35)),
            **spikes,
        )
        props = dict(
            echo_db=rng.uniform(-27.0, -20.0),
            attenuation_factor=rng.uniform(1.3, 3.0),
            halo_gain=rng.uniform(2.0, 4.0),
            edge_softness=0.5,
            edge_shadows=False,
            morph_rate=rng.uniform(0.5, 1.5),
        )
    else:
        raise ValueError(f"unknown lesion kind {kind!r}; valid: cyst, fibroadenoma, carcinoma")
    return shape, props


def _kinds_for(rng, category: str, count: int) -> list[str]:
    def benign():
        return "cyst" if rng.random() < 0.4 else "fibroadenoma"

    if category == "benign":
        return [benign() for _ in range(count)]
    if category == "malignant":
        return ["carcinoma"] + [benign() for _ in range(count - 1)]
    raise ValueError(f"category {category!r} has no lesions; valid: benign, malignant")


def _overlaps(candidate: Lesion, others: list[Lesion]) -> bool:
    for other in others:
        gap_xy = np.hypot(*np.subtract(candidate.centre_world, other.centre_world))
        gap_z = abs(candidate.elevation_centre - other.elevation_centre)
        if (
            gap_xy < 1.15 * (candidate.shape.max_radius + other.shape.max_radius)
            and gap_z < candidate.elevation_radius + other.elevation_radius
        ):
            return True
    return False


def sample_lesions(
    rng: np.random.Generator, category: str, trajectory: ProbeTrajectory, tissue: TissueMap
) -> list[Lesion]:
    """Lesions of a benign / malignant video, each placed where the probe passes at a chosen
    anchor frame, so every lesion is seen; none for a normal video."""
    if category == "normal":
        return []
    h, w = trajectory.height, trajectory.width
    count = 1 + int(rng.choice(len(EXTRA_LESION_PROBABILITIES), p=EXTRA_LESION_PROBABILITIES))
    live = [t for t in range(trajectory.num_frames) if trajectory.is_live(t)] or [0]
    lesions: list[Lesion] = []
    for kind in _kinds_for(rng, category, count):
        for _attempt in range(20):
            diameter = sample_diameter(rng, h, w)
            shape, props = _sample_kind_shape(rng, kind, diameter / 2.0)
            # Scale so the drawn outline's largest diameter is the drawn size.
            phi = np.linspace(0, 2 * np.pi, 360, endpoint=False)
            extent = 2 * shape.radius(phi).max()
            shape = replace(
                shape, semi_major=shape.semi_major * diameter / extent, semi_minor=shape.semi_minor * diameter / extent
            )
            anchor = int(rng.choice(live))
            view_x = rng.uniform(0.2, 0.8) * w
            world_x = trajectory.view_to_world(anchor) @ np.array([view_x, 0.0, 1.0])
            # Inside the fibroglandular layer, where breast cancers arise, away from its borders.
            fat_bottom, gland_bottom = tissue.layer_depths(world_x[0])
            thickness = gland_bottom - fat_bottom
            view_y = fat_bottom + thickness * rng.uniform(0.35, 0.65)
            view_y = float(np.clip(view_y, 0.5 * diameter + 0.1 * h, 0.85 * h - 0.5 * diameter))
            centre = trajectory.view_to_world(anchor) @ np.array([view_x, view_y, 1.0])
            radius_z = diameter / 2.0 * rng.uniform(0.7, 1.3)
            lesion = Lesion(
                instance_id=len(lesions) + 1,
                kind=kind,
                shape=shape,
                centre_world=(float(centre[0]), float(centre[1])),
                elevation_centre=float(trajectory.elevation[anchor] + rng.uniform(-0.3, 0.3) * radius_z),
                elevation_radius=float(radius_z),
                **props,
            )
            if not _overlaps(lesion, lesions):
                lesions.append(lesion)
                break
    return lesions
