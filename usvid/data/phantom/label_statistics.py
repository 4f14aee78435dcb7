"""What the phantom labels, measured over its videos: box sides, and how often a lesion is drawn
but left unlabelled because no annotator could see it (visibility.py).

Used for docs/en/phantom.md (the histogram of box sides, the numbers quoted there) and by the
tests that keep those numbers honest:
    python -m usvid.data.phantom.contact_sheet --out docs/images
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .split import assign_categories
from .video import RenderedFrame, plan_video, render_frames, video_rngs


@dataclass
class LabelStatistics:
    """Counts over every frame of the videos looked at."""

    num_frames: int = 0
    frames_with_label: int = 0
    frames_with_hidden_lesion: int = 0
    box_sides: list = field(default_factory=list)  # (width, height) of every labelled box
    hidden_boxes: list = field(default_factory=list)  # (width, height) of every unlabelled sliver
    visibilities: list = field(default_factory=list)  # the measured Visibility of every labelled box
    hidden_example: tuple | None = None  # (video index, frame index, pixels) of the largest sliver

    @property
    def hidden_frame_share(self) -> float:
        """Share of all frames that hold a drawn but unlabelled lesion sliver."""
        return self.frames_with_hidden_lesion / max(self.num_frames, 1)

    def add(self, video_index: int, t: int, frame: RenderedFrame) -> None:
        self.num_frames += 1
        self.frames_with_label += bool(frame.lesions)
        self.box_sides += [lesion.bbox[2:] for lesion in frame.lesions]
        self.visibilities += [lesion.visibility for lesion in frame.lesions]
        self.hidden_boxes += [lesion.bbox[2:] for lesion in frame.hidden_lesions]
        if frame.hidden_lesions:
            self.frames_with_hidden_lesion += 1
            biggest = int(max(lesion.mask.sum() for lesion in frame.hidden_lesions))
            if self.hidden_example is None or biggest > self.hidden_example[2]:
                self.hidden_example = (video_index, t, biggest)


def collect_label_statistics(
    seed: int = 0, num_videos: int = 60, num_frames: int = 80, size: int = 256
) -> LabelStatistics:
    """Renders the videos of a phantom (the same ones generate_phantom_dataset writes for these
    parameters) and counts what is labelled."""
    stats = LabelStatistics()
    for index, category in enumerate(assign_categories(num_videos, seed)):
        plan_rng, render_rng = video_rngs(seed, index)
        plan = plan_video(plan_rng, category, num_frames, size, size)
        for t, frame in enumerate(render_frames(plan, render_rng)):
            stats.add(index, t, frame)
    return stats


def plot_box_sides(stats: LabelStatistics, path, image_side: int) -> None:
    """Histogram of the labelled boxes' shorter and longer sides, in pixels and as a share of
    the frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = np.array(stats.box_sides, dtype=float).reshape(-1, 2)
    shorter, longer = sides.min(axis=1), sides.max(axis=1)
    figure, axis = plt.subplots(figsize=(6.0, 3.2), dpi=100)
    bins = np.arange(0, image_side * 0.75 + 8, 8)
    axis.hist(shorter, bins=bins, alpha=0.65, label=f"shorter side (median {np.median(shorter):.0f} px)")
    axis.hist(longer, bins=bins, alpha=0.65, label=f"longer side (median {np.median(longer):.0f} px)")
    axis.set_xlabel(f"box side, pixels of a {image_side}x{image_side} frame (40 mm deep)")
    axis.set_ylabel("labelled boxes")
    axis.set_title(f"{len(sides)} lesion boxes; smallest shorter side {shorter.min():.0f} px")
    axis.legend(frameon=False, fontsize=8)
    secondary = axis.secondary_xaxis(
        "top", functions=(lambda px: px * 40.0 / image_side, lambda mm: mm * image_side / 40.0)
    )
    secondary.set_xlabel("mm")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
