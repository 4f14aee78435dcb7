"""The breast tissue world map: echogenicity and attenuation of layered anatomy.

From the skin down, as a linear probe sees the breast: coupling gel (anechoic), the skin line
(bright double echo), subcutaneous fat (hypoechoic lobules separated by echogenic septa), Cooper's
ligaments (bright curvilinear bands rising from the gland to the skin), the fibroglandular layer
(bright, mottled, horizontally streaky, with fat islands and ducts), the retromammary fat, the
pectoral fascia and muscle (mid-grey with bright oblique striations), the chest wall and
sometimes a rib (bright surface, black shadow). Layer boundaries undulate along the world.

Echogenicity is built in dB (0 dB = glandular tissue) and returned as linear backscatter
intensity; attenuation is per pixel (intensity nepers per pixel), so shadows and enhancement
are computed, not painted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .noise import smooth_curve, smooth_field

# Echogenicity of each tissue in dB relative to glandular tissue (speckle adds the texture).
GEL_DB = -60.0
SKIN_LINE_DB = 4.0
DERMIS_DB = -6.0
FAT_DB = -15.0
SEPTUM_DB = -2.0
LIGAMENT_DB = 2.0
GLAND_DB = 0.0
GLAND_TEXTURE_DB = 3.0
DUCT_DB = -30.0
MUSCLE_DB = -17.0
STRIATION_DB = 13.0
FASCIA_DB = 2.0
CHEST_WALL_DB = -17.0
RIB_SURFACE_DB = 6.0
RIB_PROBABILITY = 0.35
# Intensity loss of average soft tissue over the full image depth; the scanner's time-gain
# compensation (render.py) cancels most, not all, of it.
TISSUE_LOSS_DB = 60.0
# Attenuation of each tissue relative to average soft tissue.
RELATIVE_ATTENUATION = {
    "gel": 0.0,
    "skin": 1.0,
    "fat": 0.9,
    "ligament": 1.5,
    "gland": 1.15,
    "muscle": 1.1,
    "chest_wall": 1.2,
    "rib": 60.0,
}
_TISSUE_LABEL = {name: i for i, name in enumerate(RELATIVE_ATTENUATION)}
_ATTENUATION_BY_LABEL = np.array(list(RELATIVE_ATTENUATION.values()), dtype=np.float32)


def db_to_intensity(db):
    return np.power(10.0, np.asarray(db, dtype=np.float32) / 10.0).astype(np.float32)


def tissue_attenuation_per_pixel(height: int) -> float:
    """Intensity attenuation (nepers / pixel) of average soft tissue for this image height."""
    return TISSUE_LOSS_DB / (10.0 * np.log10(np.e)) / height


@dataclass(frozen=True)
class TissueMap:
    """World-sized maps (rows = depth + margin_y, columns = lateral world position).

    echo: linear backscatter intensity; attenuation: intensity nepers per pixel; the boundary
    arrays give, per world column, the depth (view rows) of fat bottom and gland bottom, used to
    place lesions and decoys inside the gland.
    """

    echo: np.ndarray
    attenuation: np.ndarray
    margin_y: int
    fat_bottom: np.ndarray
    gland_bottom: np.ndarray

    def layer_depths(self, world_x: float) -> tuple[float, float]:
        """(fat bottom, gland bottom) depth in view rows at a world column."""
        col = int(np.clip(round(world_x), 0, len(self.fat_bottom) - 1))
        return float(self.fat_bottom[col]), float(self.gland_bottom[col])


def _fat_lobules_db(rng, depth, xs, top, bottom, height, margin_y):
    """Hypoechoic fat lobules: a stretched Voronoi partition whose cell borders are the echogenic
    septa (anisotropic distance makes the lobules wider than tall, as in real subcutaneous fat)."""
    rows = slice(max(0, margin_y + int(np.floor(top.min()))), margin_y + int(np.ceil(bottom.max())) + 1)
    d = depth[rows][:, None]
    x = xs[None, :]
    cell = 0.09 * height
    num = max(4, int(len(xs) * (bottom.mean() - top.mean()) / (2.2 * cell * cell)))
    seed_x = rng.uniform(0, len(xs), num)
    seed_y = rng.uniform(top.min(), bottom.max(), num)
    dist = np.sqrt(((x[..., None] - seed_x) / 2.2) ** 2 + (d[..., None] - seed_y) ** 2)
    nearest_two = np.partition(dist, 1, axis=-1)[..., :2]
    owner = np.argmin(dist, axis=-1)
    lobule_db = rng.uniform(-4.0, 2.0, num)[owner]
    septum = (nearest_two[..., 1] - nearest_two[..., 0]) < max(0.8, 0.006 * height)
    db = FAT_DB + lobule_db
    db[septum] = SEPTUM_DB + rng.uniform(-4, 0)
    return rows, db


def _draw_curves(mask: np.ndarray, curves: list[np.ndarray], thickness: int) -> None:
    cv2.polylines(mask, [np.round(c).astype(np.int32) for c in curves], False, 1, thickness, cv2.LINE_8)


def build_tissue_map(
    rng: np.random.Generator, height: int, world_width: int, world_height: int, margin_y: int
) -> TissueMap:
    """Draws one breast: layer depths, textures, ligaments, muscle, maybe a rib."""
    xs = np.arange(world_width, dtype=np.float32)
    depth = np.arange(world_height, dtype=np.float32) - margin_y
    d = depth[:, None]
    h = float(height)

    def wavy(amp, lo=0.3, hi=1.5):
        return amp * h * smooth_curve(rng, xs, lo * h, hi * h)

    skin_top = rng.uniform(0.0, 0.015) * h + np.abs(wavy(0.004))
    skin_bottom = skin_top + max(2.0, 0.025 * h)
    fat_bottom = rng.uniform(0.18, 0.3) * h + wavy(0.05, 0.2, 0.8)
    gland_bottom = fat_bottom + rng.uniform(0.28, 0.4) * h + wavy(0.03, 0.4, 1.5)
    muscle_top = gland_bottom + rng.uniform(0.03, 0.06) * h + np.abs(wavy(0.01))
    muscle_bottom = muscle_top + rng.uniform(0.15, 0.25) * h + wavy(0.015)

    db = np.full((world_height, world_width), GEL_DB, dtype=np.float32)
    tissue = np.zeros(db.shape, np.uint8)  # tissue label per pixel, for the attenuation lookup

    # Skin: an entry echo and a dermis line, both bright.
    skin = (d >= skin_top) & (d < skin_bottom)
    db[skin] = DERMIS_DB
    tissue[skin] = _TISSUE_LABEL["skin"]
    db[(d >= skin_top) & (d < skin_top + max(1.0, 0.006 * h))] = SKIN_LINE_DB
    db[(d >= skin_bottom - max(1.0, 0.008 * h)) & (d < skin_bottom)] = SKIN_LINE_DB - 2

    # Subcutaneous fat with lobules and septa.
    fat = (d >= skin_bottom) & (d < fat_bottom)
    rows, lobules = _fat_lobules_db(rng, depth, xs, skin_bottom, fat_bottom, h, margin_y)
    db[rows] = np.where(fat[rows], lobules, db[rows])
    tissue[fat] = _TISSUE_LABEL["fat"]

    # Fibroglandular layer: mottled, horizontally streaky, with fat islands and ducts.
    gland = (d >= fat_bottom) & (d < gland_bottom)
    texture = GLAND_TEXTURE_DB * smooth_field(rng, world_height, world_width, 0.03 * h, 0.12 * h)
    db[gland] = (GLAND_DB + texture)[gland]
    tissue[gland] = _TISSUE_LABEL["gland"]
    islands = np.zeros(db.shape, np.uint8)
    for _ in range(int(rng.poisson(world_width / h * 3))):
        cx = rng.uniform(0, world_width)
        cy = margin_y + np.interp(cx, xs, fat_bottom + rng.uniform(0.2, 0.8) * (gland_bottom - fat_bottom))
        axes = (int(rng.uniform(0.03, 0.07) * h), int(rng.uniform(0.01, 0.025) * h) + 1)
        cv2.ellipse(islands, (int(cx), int(cy)), axes, rng.uniform(-15, 15), 0, 360, 1, -1)
    db[(islands > 0) & gland] = FAT_DB + 1.0
    ducts = np.zeros(db.shape, np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        cx, length = rng.uniform(0, world_width), rng.uniform(0.15, 0.4) * h
        cy = margin_y + np.interp(cx, xs, (fat_bottom + gland_bottom) / 2)
        cv2.ellipse(
            ducts, (int(cx), int(cy)), (int(length), max(1, int(0.008 * h))), rng.uniform(-10, 10), 0, 360, 1, -1
        )
    db[(ducts > 0) & gland] = DUCT_DB

    # Cooper's ligaments: bright arcs from the gland surface up to the skin.
    ligaments = np.zeros(db.shape, np.uint8)
    curves = []
    for _ in range(int(rng.poisson(world_width / h * 1.5)) + 1):
        x0 = rng.uniform(0, world_width)
        lean = rng.uniform(0.1, 0.35) * h * rng.choice([-1, 1])
        t = np.linspace(0.0, 1.0, 24)
        y_start = np.interp(x0, xs, fat_bottom) + 2
        y_end = np.interp(x0 + lean, xs, skin_bottom) + rng.uniform(0.0, 0.6) * (
            y_start - np.interp(x0, xs, skin_bottom)
        )
        y = y_start + (y_end - y_start) * t
        x = x0 + lean * t**1.6 + rng.uniform(0.02, 0.08) * h * np.sin(np.pi * t) * rng.choice([-1, 1])
        curves.append(np.stack([x, y + margin_y], axis=1))
    _draw_curves(ligaments, curves, max(1, int(round(0.006 * h))))
    lig = (ligaments > 0) & (fat | gland)
    db[lig] = LIGAMENT_DB
    tissue[lig] = _TISSUE_LABEL["ligament"]

    # Retromammary fat, pectoral fascia, muscle with oblique striations, chest wall.
    retro = (d >= gland_bottom) & (d < muscle_top)
    db[retro] = FAT_DB - 2.0
    tissue[retro] = _TISSUE_LABEL["fat"]
    muscle = (d >= muscle_top) & (d < muscle_bottom)
    tilt = np.deg2rad(rng.uniform(2.0, 8.0)) * rng.choice([-1, 1])
    period = max(3.0, rng.uniform(0.02, 0.035) * h)
    warp = 1.5 * smooth_field(rng, world_height, world_width, 0.2 * h, 0.6 * h)
    phase = 2 * np.pi * (d * np.cos(tilt) - xs[None, :] * np.sin(tilt)) / period + warp
    stripes = (0.5 + 0.5 * np.cos(phase)) ** 12
    db[muscle] = (MUSCLE_DB + STRIATION_DB * stripes)[muscle]
    tissue[muscle] = _TISSUE_LABEL["muscle"]
    fascia = max(1.0, 0.01 * h)
    db[(d >= muscle_top - fascia) & (d < muscle_top)] = FASCIA_DB
    db[(d >= muscle_bottom) & (d < muscle_bottom + fascia)] = FASCIA_DB
    wall = d >= muscle_bottom + fascia
    db[wall] = (CHEST_WALL_DB + 2.0 * texture)[wall]
    tissue[wall] = _TISSUE_LABEL["chest_wall"]
    if rng.random() < RIB_PROBABILITY:
        rib = np.zeros(db.shape, np.uint8)
        cx = rng.uniform(0, world_width)
        cy = margin_y + np.interp(cx, xs, muscle_bottom) + rng.uniform(0.08, 0.15) * h
        cv2.ellipse(rib, (int(cx), int(cy)), (int(0.18 * h), int(0.06 * h)), 0, 180, 360, 1, max(1, int(0.012 * h)))
        rib_mask = (rib > 0) & wall
        db[rib_mask] = RIB_SURFACE_DB
        tissue[rib_mask] = _TISSUE_LABEL["rib"]

    attenuation = _ATTENUATION_BY_LABEL[tissue] * np.float32(tissue_attenuation_per_pixel(height))
    return TissueMap(
        db_to_intensity(db), attenuation, margin_y, fat_bottom.astype(np.float32), gland_bottom.astype(np.float32)
    )
