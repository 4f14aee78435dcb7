"""A contact sheet of phantom frames: a grid with lesion boxes (green), decoys (dashed orange,
never labelled) and lesion slivers too faint or small to see (dashed magenta, not labelled)
drawn, used for docs/en/phantom.md and to eyeball realism:
    python -m usvid.data.phantom.contact_sheet --out docs/images
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ...utils.image_grid import tile_grid
from .label_statistics import collect_label_statistics, plot_box_sides
from .params import CATEGORIES
from .split import assign_categories
from .video import RenderedFrame, plan_video, render_frames, video_rngs

LESION_COLOUR = (80, 220, 80)  # BGR
DECOY_COLOUR = (0, 150, 255)
HIDDEN_COLOUR = (255, 0, 255)


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


def annotate(frame: RenderedFrame, caption: str = "", size: int | None = None) -> np.ndarray:
    """The frame as BGR (resized to size x size first, so box colours stay exact) with its
    lesion boxes, decoy boxes and an optional caption."""
    grey = frame.image
    scale = 1.0
    if size is not None:
        scale = size / grey.shape[1]
        grey = cv2.resize(grey, (size, int(round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)

    def scaled(box):
        return tuple(int(round(v * scale)) for v in box)

    for lesion in frame.lesions:
        x, y, w, h = scaled(lesion.bbox)
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), LESION_COLOUR, 1)
    for decoy in frame.decoys:
        _dashed_rectangle(image, scaled(decoy.bbox), DECOY_COLOUR)
    for sliver in frame.hidden_lesions:
        _dashed_rectangle(image, scaled(sliver.bbox), HIDDEN_COLOUR, dash=2)
    if caption:
        cv2.putText(
            image, caption, (3, image.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA
        )
    return image


def _frames_of(seed: int, index: int, category: str, num_frames: int, size: int):
    plan_rng, render_rng = video_rngs(seed, index)
    plan = plan_video(plan_rng, category, num_frames, size, size)
    return plan, list(render_frames(plan, render_rng))


def _pick(frames, count: int) -> list[int]:
    """`count` evenly spread frames, preferring frames that show a lesion or a decoy."""
    busy = [t for t, f in enumerate(frames) if f.lesions or f.decoys] or list(range(len(frames)))
    return [busy[int(round(i))] for i in np.linspace(0, len(busy) - 1, count)]


def _save_small_png(path: Path, bgr: np.ndarray, grey_levels: int = 62) -> None:
    """Palette PNG: `grey_levels` greys plus the two box colours, kept exact (speckle compresses
    poorly, a small palette keeps the docs images small)."""
    box_colours = [LESION_COLOUR, DECOY_COLOUR, HIDDEN_COLOUR]
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    indices = np.round(grey * (grey_levels - 1) / 255.0).astype(np.uint8)
    for k, colour in enumerate(box_colours):
        indices[(bgr == np.array(colour, np.uint8)).all(axis=-1)] = grey_levels + k
    palette = [int(round(i * 255 / (grey_levels - 1))) for i in range(grey_levels) for _ in range(3)]
    for b, g, r in box_colours:
        palette += [r, g, b]
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    image.save(path, optimize=True)


def docs_images(
    out_dir, seed: int = 0, size: int = 256, tile: int = 176, num_frames: int = 80, num_videos: int = 60
) -> list[Path]:
    """The images of docs/*/phantom.md, drawn from the default dataset's own videos:
    phantom_contact_sheet.png (a benign, a malignant and a normal video, four frames each),
    phantom_decoy_sequence.png (consecutive frames of one decoy changing shape),
    phantom_box_sides.png (histogram of the labelled boxes' sides) and
    phantom_hidden_sliver.png (the largest lesion sliver left unlabelled, next to the frames
    before and after it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    categories = assign_categories(num_videos, seed)
    tiles, decoy_track = [], None
    for category in CATEGORIES:
        index = categories.index(category)
        plan, frames = _frames_of(seed, index, category, num_frames, size)
        for t in _pick(frames, 4):
            tiles.append(annotate(frames[t], f"{category} #{index} t={t}", tile))
    for index, category in enumerate(categories):  # the first long fat-lobule decoy
        plan, frames = _frames_of(seed, index, category, num_frames, size)
        lobules = [i for i, d in enumerate(plan.decoys) if d.kind == "fat_lobule" and d.num_frames >= 8]
        if lobules:
            decoy = plan.decoys[lobules[0]]
            decoy_track = [(t, frames[t]) for t in range(decoy.start_frame, decoy.start_frame + decoy.num_frames)]
            break
    paths = [out_dir / "phantom_contact_sheet.png", out_dir / "phantom_decoy_sequence.png"]
    _save_small_png(paths[0], tile_grid(tiles, 4))
    if decoy_track is not None:
        chosen = [decoy_track[i] for i in np.linspace(0, len(decoy_track) - 1, 5).round().astype(int)]
        strip = [annotate(f, f"t={t}", tile) for t, f in chosen]
        _save_small_png(paths[1], tile_grid(strip, len(strip)))
    stats = collect_label_statistics(seed, num_videos, num_frames, size)
    paths.append(out_dir / "phantom_box_sides.png")
    plot_box_sides(stats, paths[-1], size)
    if stats.hidden_example is not None:
        index, t, _ = stats.hidden_example
        _, frames = _frames_of(seed, index, categories[index], num_frames, size)
        around = [u for u in (t - 6, t - 3, t, t + 3, t + 6) if 0 <= u < len(frames)]
        strip = [annotate(frames[u], f"#{index} t={u}", tile) for u in around]
        paths.append(out_dir / "phantom_hidden_sliver.png")
        _save_small_png(paths[-1], tile_grid(strip, len(strip)))
    print(
        f"{stats.num_frames} frames, {len(stats.box_sides)} labelled boxes, "
        f"{stats.frames_with_label} frames with a labelled lesion, "
        f"{stats.frames_with_hidden_lesion} ({100 * stats.hidden_frame_share:.1f} %) with an "
        f"unlabelled sliver ({len(stats.hidden_boxes)} slivers); labelled lesions: median contrast "
        f"{np.median([v.contrast for v in stats.visibilities]):.2f}, median detectability "
        f"{np.median([v.detectability for v in stats.visibilities]):.1f}"
    )
    return paths


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the phantom documentation images.")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for written in docs_images(args.out, seed=args.seed):
        print(written, f"{written.stat().st_size // 1024} KB")
