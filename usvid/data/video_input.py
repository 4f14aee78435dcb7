"""Frames of a new scan, whatever it came as: a video file PyAV decodes (MP4, AVI, MOV, MKV...),
a folder of frame images (in name order) or a DICOM file (see dicom_input.py).

``open_frame_source(path)`` checks what it can up front and returns a ``FrameSource`` whose
``frames()`` yields uint8 frames as OpenCV decodes images (HxW gray or HxWx3 BGR), so the
predictor converts every source exactly as the loaders convert frames read from disk. A source
that cannot be read is a ``VideoInputError`` naming the file and what would work instead.
"""

import os
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

import cv2
import numpy as np

from .datasets.validation import DatasetFormatError

__all__ = ["FrameSource", "VideoInputError", "IMAGE_EXTENSIONS", "list_inputs", "open_frame_source"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_EXTENSIONS = (".dcm", ".dicom")
DEFAULT_FPS = 30.0  # a folder of frames carries no frame rate


class VideoInputError(DatasetFormatError):
    """An input video, frame folder or DICOM file that cannot be read; the message says why."""


@dataclass
class FrameSource:
    """One input: ``name`` (the file name without extension, or the folder's name), the frame
    rate, the number of frames when known up front, and ``frames()`` (a new iterator per call)."""

    path: str
    name: str
    fps: float
    num_frames: Optional[int]
    _frames: Callable[[], Iterator[np.ndarray]]

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in time order; a source with no frame, or one that stops early (a
        truncated file), raises VideoInputError."""
        count = 0
        for frame in self._frames():
            count += 1
            yield frame
        if count == 0:
            raise VideoInputError(f"{self.path}: no frames")
        if self.num_frames is not None and count < self.num_frames:
            raise VideoInputError(f"{self.path}: truncated, only {count} of its {self.num_frames} frames decode")


def open_frame_source(path: str, fps: Optional[float] = None) -> FrameSource:
    """The FrameSource for ``path``: a folder, a DICOM file (by extension or by its "DICM"
    preamble) or a video file. ``fps`` is the frame rate of an input that carries none (a frame
    folder, a DICOM file without FrameTime or CineRate; default DEFAULT_FPS); video files and
    DICOM files that state their rate keep it."""
    if fps is not None and not (fps > 0 and np.isfinite(fps)):
        raise VideoInputError(f"{path}: {fps} is not a frame rate; give frames per second > 0, e.g. 25")
    if not os.path.exists(path):
        raise FileNotFoundError(f"input {path} does not exist")
    if os.path.isdir(path):
        return _folder_source(path, fps or DEFAULT_FPS)
    if path.lower().endswith(DICOM_EXTENSIONS) or _has_dicom_preamble(path):
        from .dicom_input import dicom_source  # pydicom only when a DICOM file is given

        return dicom_source(path, fps or DEFAULT_FPS)
    return _video_source(path)


def _has_dicom_preamble(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


def _folder_source(path: str, fps: float) -> FrameSource:
    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise VideoInputError(f"{path}: a folder without frame images (looked for {', '.join(IMAGE_EXTENSIONS)})")

    def frames() -> Iterator[np.ndarray]:
        for file_name in files:
            image = cv2.imread(os.path.join(path, file_name), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise VideoInputError(f"{os.path.join(path, file_name)}: not an image OpenCV can decode")
            yield image

    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
    return FrameSource(path, name, fps, len(files), frames)


def _video_source(path: str) -> FrameSource:
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoInputError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
            num_frames = int(stream.frames) or None
    except av.FFmpegError as error:
        raise VideoInputError(f"{path}: not a video PyAV can decode ({error})") from None

    def frames() -> Iterator[np.ndarray]:
        try:
            with av.open(path) as container:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="bgr24")
        except av.FFmpegError as error:
            raise VideoInputError(f"{path}: decoding failed, the file is damaged or truncated ({error})") from None

    return FrameSource(path, os.path.splitext(os.path.basename(path))[0], fps, num_frames, frames)


def list_inputs(path: str) -> List[str]:
    """The inputs ``path`` names: itself, or, for a folder holding no frame images but video or
    DICOM files, each of those files (a folder of videos)."""
    if not os.path.isdir(path) or any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)):
        return [path]
    inside = sorted(os.path.join(path, f) for f in os.listdir(path) if os.path.isfile(os.path.join(path, f)))
    return inside or [path]
