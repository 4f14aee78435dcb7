"""DICOM ultrasound (single image or multi-frame cine) as a FrameSource.

The frame rate comes from FrameTime (milliseconds per frame), else CineRate, else
RecommendedDisplayFrameRate. Pixels follow the photometric interpretation: MONOCHROME1 is
inverted (its 0 is white), RGB and YBR (converted to RGB by pydicom) become BGR, PALETTE COLOR
goes through its lookup table; more than 8 bits are scaled to 0..255 over the whole cine.
A file that is not an image, or whose transfer syntax needs a decoder that is not installed, is
a VideoInputError that says which plug-in would decode it.
"""

import os
from typing import Iterator

import cv2
import numpy as np

from .video_input import DEFAULT_FPS, FrameSource, VideoInputError

__all__ = ["dicom_source"]

# Transfer syntax name (as pydicom spells it) -> the pip package that decodes it.
DECODER_PLUGINS = (
    ("JPEG-LS", "pylibjpeg pylibjpeg-libjpeg (or pyjpegls)"),
    ("JPEG 2000", "pylibjpeg pylibjpeg-openjpeg"),
    ("High-Throughput JPEG 2000", "pylibjpeg pylibjpeg-openjpeg"),
    ("JPEG", "pylibjpeg pylibjpeg-libjpeg (or Pillow for baseline JPEG)"),
    ("RLE", "pylibjpeg pylibjpeg-rle"),
)


def _plugin_for(syntax_name: str) -> str:
    for key, plugin in DECODER_PLUGINS:
        if key.lower() in syntax_name.lower():
            return plugin
    return "pylibjpeg with its plug-ins, or gdcm"


def _frame_rate(dataset, unstated_fps: float) -> float:
    frame_time = dataset.get("FrameTime")
    if frame_time is not None and float(frame_time) > 0:
        return 1000.0 / float(frame_time)
    for key in ("CineRate", "RecommendedDisplayFrameRate"):
        value = dataset.get(key)
        if value is not None and float(value) > 0:
            return float(value)
    return unstated_fps


def _decode(path: str, dataset) -> np.ndarray:
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    syntax_name = getattr(syntax, "name", str(syntax))
    try:
        return dataset.pixel_array
    except Exception as error:  # noqa: BLE001 - pydicom raises several types for a missing decoder
        reason = str(error).strip().splitlines()[0].rstrip(":") if str(error).strip() else type(error).__name__
        raise VideoInputError(
            f"{path}: cannot decode the pixel data of transfer syntax {syntax_name} ({syntax}): {reason}. "
            f"Install a decoder for it: pip install {_plugin_for(syntax_name)}"
        ) from None


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(pixels.min()), float(pixels.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.rint((pixels.astype(np.float64) - low) * scale), 0, 255).astype(np.uint8)


def _frames_array(path: str, dataset) -> np.ndarray:
    """All frames as uint8, (N, H, W) gray or (N, H, W, 3) BGR."""
    from pydicom.pixels import apply_color_lut

    pixels = _decode(path, dataset)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
    color = pixels.ndim == (4 if frames > 1 else 3)
    if frames == 1:
        pixels = pixels[None]
    pixels = _to_uint8(pixels)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    if color:  # RGB, YBR (pydicom converts it to RGB) and palette colour
        pixels = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) for frame in pixels])
    return pixels


def dicom_source(path: str, unstated_fps: float = DEFAULT_FPS) -> FrameSource:
    """The frames of a single- or multi-frame DICOM file, at the rate its FrameTime, CineRate or
    RecommendedDisplayFrameRate states (``unstated_fps`` when it states none)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as error:
        raise VideoInputError(f"{path}: not a readable DICOM file ({error})") from None
    if "PixelData" not in dataset:
        modality = dataset.get("Modality", "?")
        raise VideoInputError(
            f"{path}: a DICOM file without an image (no PixelData; SOP class "
            f"{dataset.get('SOPClassUID', '?')}, modality {modality})"
        )
    frames = _frames_array(path, dataset)

    def iterate() -> Iterator[np.ndarray]:
        yield from frames

    name = os.path.splitext(os.path.basename(path))[0]
    return FrameSource(path, name, _frame_rate(dataset, unstated_fps), len(frames), iterate)
