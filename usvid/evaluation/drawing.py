"""Drawing detections on frames: the annotated frames, MP4 and contact sheet that
tools/visualize.py renders for an evaluated video and tools/predict.py for any input video.

One set of colours everywhere, explained by ``legend_strip`` under every contact sheet and
video: ground truth green, a kept detection coloured by its score on the plasma map (dark
purple just above the threshold, yellow certain), a detection of a false-positive sequence
thick red with "FP".
"""

from typing import Optional, Sequence

import cv2
import numpy as np

from ..utils.image_grid import tile_grid

__all__ = [
    "GT_COLOR",
    "FP_COLOR",
    "HEADER_HEIGHT",
    "score_color",
    "render_frame",
    "legend_strip",
    "with_legend",
    "Mp4Writer",
    "write_mp4",
    "contact_sheet",
]

GT_COLOR = (60, 200, 60)  # BGR green
FP_COLOR = (40, 40, 230)  # BGR red
HEADER_HEIGHT = 22


def score_color(score: float, threshold: float) -> tuple:
    """BGR colour on the plasma map: the threshold maps to dark purple, a score of 1 to yellow."""
    span = max(1e-6, 1.0 - threshold)
    level = int(np.clip((score - threshold) / span, 0.0, 1.0) * 200 + 55)
    bgr = cv2.applyColorMap(np.array([[level]], dtype=np.uint8), cv2.COLORMAP_PLASMA)[0, 0]
    return tuple(int(c) for c in bgr)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return image.copy()


def render_frame(
    image: np.ndarray,
    gt_boxes: np.ndarray,
    detections: np.ndarray,
    false_positive: np.ndarray,
    caption: str,
    threshold: float,
    scale: float = 1.0,
) -> np.ndarray:
    """One annotated frame (BGR uint8) with a caption header.

    gt_boxes: (G, 4) XYXY; detections: (K, 5) XYXY + score, already filtered to the kept ones;
    false_positive: (K,) bool, True for boxes of a false-positive sequence. Pixel coordinates
    refer to ``image``; ``scale`` enlarges small frames so boxes and text stay legible.
    """
    canvas = _to_bgr(image)
    if scale != 1.0:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    for box in np.asarray(gt_boxes, dtype=float).reshape(-1, 4) * scale:
        x1, y1, x2, y2 = np.round(box).astype(int)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), GT_COLOR, 1, cv2.LINE_AA)
    detections = np.asarray(detections, dtype=float).reshape(-1, 5)
    for det, is_fp in zip(detections, np.asarray(false_positive, dtype=bool).reshape(-1)):
        x1, y1, x2, y2 = np.round(det[:4] * scale).astype(int)
        color = FP_COLOR if is_fp else score_color(det[4], threshold)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2 if is_fp else 1, cv2.LINE_AA)
        label = f"{'FP ' if is_fp else ''}{det[4]:.2f}"
        cv2.putText(canvas, label, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
    header = np.zeros((HEADER_HEIGHT, canvas.shape[1], 3), dtype=np.uint8)
    cv2.putText(header, caption, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([header, canvas])


LEGEND_HEIGHT = 20


def legend_strip(width: int, threshold: float, ground_truth: bool = True, false_positives: bool = True) -> np.ndarray:
    """A ``width``-pixel wide BGR strip explaining the colours: the ground-truth green, the
    score ramp from ``threshold`` to 1 and the false-positive red (the last two only where the
    picture can show them, e.g. no ground truth on a new scan)."""
    strip = np.full((LEGEND_HEIGHT, width, 3), 255, np.uint8)
    font, x = cv2.FONT_HERSHEY_SIMPLEX, 4

    def text(label: str, color=(40, 40, 40)) -> None:
        nonlocal x
        cv2.putText(strip, label, (x, 14), font, 0.38, color, 1, cv2.LINE_AA)
        x += cv2.getTextSize(label, font, 0.38, 1)[0][0] + 10

    def swatch(color, thickness: int = 1) -> None:
        nonlocal x
        cv2.rectangle(strip, (x, 5), (x + 14, 15), color, thickness)
        x += 18

    if ground_truth:
        swatch(GT_COLOR)
        text("ground truth")
    text(f"score {threshold:.2f}")
    x -= 6
    for step in range(40):  # the ramp score_color uses, left = threshold, right = 1
        score = threshold + (1.0 - threshold) * step / 39
        strip[5:16, x + step] = score_color(score, threshold)
    x += 44
    text("1.00")
    if false_positives:
        swatch(FP_COLOR, 2)
        text("FP: false-alarm sequence", FP_COLOR)
    return strip


def with_legend(
    image: np.ndarray, threshold: float, ground_truth: bool = True, false_positives: bool = True
) -> np.ndarray:
    """``image`` with ``legend_strip`` added below it."""
    return np.vstack([image, legend_strip(image.shape[1], threshold, ground_truth, false_positives)])


class Mp4Writer:
    """Writes BGR frames one at a time to an H.264 MP4 with PyAV, or with OpenCV's mp4v when
    PyAV or its encoder is unavailable, so a long video never has to be held in memory. Frames
    are padded to even sides (yuv420p needs them). Use as a context manager, or call close()."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        self._container = self._stream = self._opencv = None
        self._size: Optional[tuple] = None

    def _open(self, height: int, width: int) -> None:
        from fractions import Fraction

        import av

        self._size = (height, width)
        try:
            self._container = av.open(self.path, mode="w")
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            self._stream.height, self._stream.width = height, width
            self._stream.pix_fmt = "yuv420p"
        except Exception:  # noqa: BLE001 - any PyAV/codec failure: the OpenCV writer is the fallback
            if self._container is not None:
                self._container.close()
            self._container = self._stream = None
            self._opencv = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._opencv.isOpened():
                raise RuntimeError(f"neither PyAV nor OpenCV could open an MP4 writer for {self.path}") from None

    def write(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        frame = cv2.copyMakeBorder(frame, 0, height % 2, 0, width % 2, cv2.BORDER_CONSTANT)
        if self._size is None:
            self._open(*frame.shape[:2])
        if self._opencv is not None:
            self._opencv.write(frame)
            return
        import av

        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        if self._opencv is not None:
            self._opencv.release()
        self._container = self._stream = self._opencv = None

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_mp4(frames: Sequence[np.ndarray], path: str, fps: float) -> str:
    """Write BGR frames to an MP4 (see Mp4Writer); returns the path."""
    if not len(frames):
        raise ValueError(f"no frames to write to {path}")
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def contact_sheet(
    frames: Sequence[np.ndarray],
    columns: int = 6,
    max_tiles: int = 24,
    tile_width: int = 320,
    threshold: Optional[float] = None,
    ground_truth: bool = True,
    false_positives: bool = True,
) -> np.ndarray:
    """A grid of at most ``max_tiles`` frames spread evenly over the video (first and last
    included), each at most ``tile_width`` pixels wide, so one PNG shows how detections evolve
    through the whole video at a size an image viewer shows whole. With ``threshold``, the
    colour legend (``legend_strip``) is added below the grid."""
    if not frames:
        raise ValueError("contact_sheet needs at least one frame")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_tiles, len(frames))).round().astype(int))
    tiles = [frames[i] for i in picks]
    if tiles[0].shape[1] > tile_width:
        factor = tile_width / tiles[0].shape[1]
        tiles = [cv2.resize(t, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) for t in tiles]
    sheet = tile_grid(tiles, columns, gap=2, background=255)
    return sheet if threshold is None else with_legend(sheet, threshold, ground_truth, false_positives)
