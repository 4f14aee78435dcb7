"""Check a dataset before anyone trains on it: every frame file, a summary per video, and the
distribution of its lesion boxes.

A corrupt or truncated frame is otherwise found only when the loader reaches it, possibly hours
into a training run; a frame whose size differs from the annotation file's shifts every box of
it without any error. ``check_video_frames`` reads the header of every frame (and, for PNG, the
checksums of all its chunks, which catches truncated files without decoding the pixels), so a
dataset of tens of thousands of frames is checked in about a minute.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["FrameProblem", "check_frame_file", "check_video_frames", "video_summary_rows", "save_box_statistics_plot"]


@dataclass(frozen=True)
class FrameProblem:
    """A frame file that training would fail on or read wrongly; ``problem`` says how."""

    video_id: object
    frame_idx: int
    file_name: str
    problem: str


def check_frame_file(path: str, width: int, height: int) -> str:
    """What is wrong with the frame file at ``path`` that the annotations say is ``width`` x
    ``height`` pixels, or "" when nothing is."""
    if not os.path.isfile(path):
        return "missing"
    if os.path.getsize(path) == 0:
        return "zero-byte file"
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()  # structure and checksums, no pixel decoding
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"corrupt or not an image ({type(error).__name__}: {error})"
    if size != (width, height):
        return f"size {size[0]}x{size[1]}, the annotations say {width}x{height}"
    return ""


def check_video_frames(videos: Sequence[dict], progress=None) -> List[FrameProblem]:
    """Every problem of every frame of ``videos`` (usvid video dicts), in video and frame order.
    ``progress``, if given, is called once per video (e.g. a tqdm bar's ``update``)."""
    problems = []
    for video in videos:
        for frame in video["frames"]:
            problem = check_frame_file(frame["file_name"], video["width"], video["height"])
            if problem:
                problems.append(FrameProblem(video["video_id"], frame["frame_idx"], frame["file_name"], problem))
        if progress is not None:
            progress()
    return problems


def video_summary_rows(videos: Sequence[dict], problems: Sequence[FrameProblem]) -> List[Dict[str, object]]:
    """One row per video: its name, size, frame count, frames with lesions, boxes, distinct
    lesions (tracks), the median box side and how many of its frames have a problem."""
    bad_frames: Dict[object, int] = {}
    for problem in problems:
        bad_frames[problem.video_id] = bad_frames.get(problem.video_id, 0) + 1
    rows = []
    for video in videos:
        boxes = [a["bbox"] for f in video["frames"] for a in f["annotations"]]
        sides = _box_sides(boxes)
        rows.append(
            {
                "video": video.get("video_name", video["video_id"]),
                "size": f"{video['width']}x{video['height']}",
                "frames": len(video["frames"]),
                "lesion frames": sum(1 for f in video["frames"] if f["annotations"]),
                "boxes": len(boxes),
                "lesions": len({a["track_id"] for f in video["frames"] for a in f["annotations"]}),
                "median box side": round(float(np.median(sides)), 1) if len(sides) else "-",
                "bad frames": bad_frames.get(video["video_id"], 0),
            }
        )
    return rows


def _box_sides(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """sqrt(area) of each XYXY box: one number for a box's size, comparable across shapes."""
    if not boxes:
        return np.zeros(0)
    array = np.asarray(boxes, dtype=np.float64)
    return np.sqrt((array[:, 2] - array[:, 0]) * (array[:, 3] - array[:, 1]))


def _lesions_per_frame(videos: Sequence[dict]) -> np.ndarray:
    return np.asarray([len(f["annotations"]) for v in videos for f in v["frames"]], dtype=np.int64)


def save_box_statistics_plot(videos: Sequence[dict], path: str, title: str = "") -> Tuple[str, Dict[str, float]]:
    """Write a PNG with two histograms: lesion box size (sqrt of the area, pixels) and lesions
    per frame. Returns the path and the numbers drawn (box count, median side, lesion-free
    share of frames), so a caller can print them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # plotting only when asked
    from matplotlib.figure import Figure

    sides = _box_sides([a["bbox"] for v in videos for f in v["frames"] for a in f["annotations"]])
    per_frame = _lesions_per_frame(videos)
    figure = Figure(figsize=(9.6, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    size_axes, count_axes = figure.subplots(1, 2)
    if len(sides):
        size_axes.hist(sides, bins=min(40, max(5, len(sides) // 5)), color="tab:blue")
    else:
        size_axes.text(0.5, 0.5, "no lesion boxes", ha="center", va="center", transform=size_axes.transAxes)
    size_axes.set_title(f"lesion box size ({len(sides)} boxes)")
    size_axes.set_xlabel("sqrt(box area), pixels")
    size_axes.set_ylabel("boxes")
    counts = np.bincount(per_frame) if len(per_frame) else np.zeros(1, dtype=np.int64)
    count_axes.bar(np.arange(len(counts)), counts, color="tab:orange")
    count_axes.set_xticks(np.arange(len(counts)))
    count_axes.set_title(f"lesions per frame ({len(per_frame)} frames)")
    count_axes.set_xlabel("lesions in the frame")
    count_axes.set_ylabel("frames")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path)
    numbers = {
        "boxes": float(len(sides)),
        "median_box_side": float(np.median(sides)) if len(sides) else float("nan"),
        "lesion_free_frame_share": float(np.mean(per_frame == 0)) if len(per_frame) else float("nan"),
    }
    return path, numbers


def check_dataset(
    videos: Sequence[dict], name: str, plot_path: str, max_listed: int = 20
) -> Tuple[str, List[FrameProblem]]:
    """Check every frame of ``videos``, draw the box statistics to ``plot_path`` and return the
    report to print (per-video table, the problems, the plot's numbers) with the problems."""
    from tabulate import tabulate
    from tqdm import tqdm

    with tqdm(total=len(videos), desc=f"checking {name}", unit="video", leave=False) as bar:
        problems = check_video_frames(videos, progress=bar.update)
    rows = video_summary_rows(videos, problems)
    _, numbers = save_box_statistics_plot(videos, plot_path, title=name)
    num_frames = sum(row["frames"] for row in rows)
    lines = [tabulate(rows, headers="keys", tablefmt="pipe"), ""]
    lines.append(
        f"{name}: {len(videos)} videos, {num_frames} frames, {int(numbers['boxes'])} lesion boxes "
        f"(median side {numbers['median_box_side']:.1f} px), "
        f"{100 * numbers['lesion_free_frame_share']:.1f} % of frames lesion-free"
    )
    lines.append(f"box sizes and lesions per frame: {plot_path}")
    if problems:
        lines.append(f"{len(problems)} frame(s) with a problem:")
        lines += [
            f"  video {p.video_id} frame {p.frame_idx}: {p.file_name}: {p.problem}" for p in problems[:max_listed]
        ]
        if len(problems) > max_listed:
            lines.append(f"  ... and {len(problems) - max_listed} more")
    else:
        lines.append(f"all {num_frames} frames readable, with the size the annotations give")
    return "\n".join(lines), problems
