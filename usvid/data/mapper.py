"""Turn the frames of a clip (dataset dicts) into model inputs: decode, resize, augment.

Output frame dict: ``{"image": CHW uint8 tensor, "instances": Instances(gt_boxes, gt_classes),
"height", "width" (ORIGINAL frame size, so predictions can be scaled back), "file_name",
"video_id", "frame_idx", "dataset"}``. The image stays uint8 (4x less to copy out of loader
workers than float32); the model converts it and normalises with PIXEL_MEAN / PIXEL_STD. Frames
are 1 channel (grayscale, INPUT.FORMAT "L") or 3 channels (INPUT.FORMAT "RGB" / "BGR").

Resize: to about INPUT.FIXED_AREA_{TRAIN,TEST} pixels with the aspect ratio kept and each side
rounded to the nearest multiple of INPUT.SIZE_DIVISIBILITY (at least one multiple), so every
backbone stride divides the input and no padding is needed.

Training augmentation draws its random parameters ONCE per clip and applies them to every frame
alike (a clip is one continuous sweep; per-frame jitter would look like flicker that the
temporal model would have to learn to ignore): area scale (INPUT.SCALE_TRAIN), horizontal flip
(INPUT.RANDOM_FLIP), then an intensity mapping out = brightness * ((255 * (in/255) ** gamma -
127.5) * contrast + 127.5), applied as one 256-entry lookup table. Boxes are transformed alike,
clipped to the image, and empty ones dropped.
"""

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..structures import Boxes, Instances

__all__ = [
    "ClipMapper",
    "ClipAugmentation",
    "PackedClip",
    "read_frame",
    "to_image_format",
    "inference_input",
    "fixed_area_size",
]

COLOR_FORMATS = ("L", "RGB", "BGR")


def read_frame(file_name: str, image_format: str = "L") -> np.ndarray:
    """Decode a frame as uint8: HxW for "L", HxWx3 for "RGB" / "BGR" (gray files replicated)."""
    if image_format not in COLOR_FORMATS:
        raise ValueError(f"INPUT.FORMAT={image_format!r} is not one of {list(COLOR_FORMATS)}")
    image = cv2.imread(file_name, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"cannot read frame {file_name} (missing, or not an image OpenCV can decode)")
    return to_image_format(image, image_format)


def to_image_format(image: np.ndarray, image_format: str) -> np.ndarray:
    """A decoded image as OpenCV gives it (HxW gray, HxWx3 BGR or HxWx4 BGRA; uint8 or uint16)
    as uint8 in ``image_format``: HxW for "L", HxWx3 for "RGB" / "BGR". Shared by the loaders
    and the predictor, so a frame from a video file is converted exactly as one from disk."""
    if image.dtype == np.uint16:  # 16-bit exports: keep the 8 most significant bits
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image_format == "L":
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image_format == "RGB" else image


def inference_input(image: np.ndarray, fixed_area: float, size_divisibility: int) -> dict:
    """The model input of one frame at test time (``image`` already in INPUT.FORMAT): resized to
    about ``fixed_area`` pixels, sides multiples of ``size_divisibility``, as a CHW uint8 tensor,
    with the original "height" / "width" the model scales its boxes back to. This is exactly
    what the test loader's ClipMapper produces for the frame."""
    height, width = image.shape[:2]
    out_size = fixed_area_size(height, width, fixed_area, size_divisibility)
    if out_size != (height, width):
        image = cv2.resize(image, (out_size[1], out_size[0]), interpolation=cv2.INTER_LINEAR)
    pixels = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    return {"image": torch.from_numpy(np.ascontiguousarray(pixels)), "height": height, "width": width}


def fixed_area_size(height: int, width: int, area: float, divisibility: int) -> Tuple[int, int]:
    """(h, w) with h*w close to ``area``, the aspect ratio of (height, width) kept, and each side
    rounded to the nearest positive multiple of ``divisibility`` (no rounding when <= 1)."""
    scale = math.sqrt(area / (height * width))
    step = max(int(divisibility), 1)

    def snap(side: float) -> int:
        return max(step, int(round(side / step)) * step)

    return snap(height * scale), snap(width * scale)


@dataclass(frozen=True)
class ClipAugmentation:
    """The random parameters of one clip (identity by default, which is what testing uses)."""

    area_scale: float = 1.0
    flip: bool = False
    contrast: float = 1.0
    brightness: float = 1.0
    gamma: float = 1.0

    def intensity_table(self) -> Optional[np.ndarray]:
        """The 256-entry uint8 lookup table of the intensity jitter; None when it is the identity."""
        if self.contrast == 1.0 and self.brightness == 1.0 and self.gamma == 1.0:
            return None
        levels = np.arange(256, dtype=np.float64)
        levels = 255.0 * (levels / 255.0) ** self.gamma
        levels = ((levels - 127.5) * self.contrast + 127.5) * self.brightness
        return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    low, high = float(bounds[0]), float(bounds[1])
    return low if low == high else float(rng.uniform(low, high))


@dataclass
class PackedClip:
    """A mapped clip in the form loader workers send: one NumPy array with every frame's pixels
    (T x C x H x W) and plain Python boxes / classes / fields per frame. It pickles as one buffer
    and a few small lists, where frame dicts would cost a tensor shared-memory segment (and its
    file-descriptor handshake) per image, box and class tensor. ``unpack`` makes the frame dicts
    in the receiving process (images are views of the pixel array)."""

    pixels: np.ndarray
    boxes: List[List[Tuple[float, float, float, float]]]
    classes: List[List[int]]
    frame_fields: List[dict]

    def unpack(self) -> List[dict]:
        out_size = tuple(self.pixels.shape[2:])
        pixels = torch.from_numpy(self.pixels)
        return [
            dict(
                fields,
                image=pixels[t],
                instances=Instances(
                    out_size,
                    gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
                    gt_classes=torch.tensor(classes, dtype=torch.int64),
                ),
            )
            for t, (boxes, classes, fields) in enumerate(zip(self.boxes, self.classes, self.frame_fields))
        ]


@dataclass(frozen=True, kw_only=True)
class ClipMapper:
    """Maps a clip (a video dict and some of its frame dicts) to model-ready frame dicts. Its
    fields are the mapping's fixed parameters (``from_config`` reads them from INPUT.*); the
    random ones are drawn per clip (``draw_augmentation``)."""

    is_train: bool
    image_format: str = "L"
    fixed_area: float = 256 * 256
    size_divisibility: int = 32
    scale_range: Sequence[float] = (1.0, 1.0)
    flip_prob: float = 0.0
    contrast: Sequence[float] = (1.0, 1.0)
    brightness: Sequence[float] = (1.0, 1.0)
    gamma: Sequence[float] = (1.0, 1.0)

    def __post_init__(self):
        if self.image_format not in COLOR_FORMATS:
            raise ValueError(f"INPUT.FORMAT={self.image_format!r} is not one of {list(COLOR_FORMATS)}")

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "ClipMapper":
        i = cfg.INPUT
        common = dict(is_train=is_train, image_format=i.FORMAT, size_divisibility=i.SIZE_DIVISIBILITY)
        if not is_train:
            return cls(fixed_area=i.FIXED_AREA_TEST, **common)
        return cls(
            fixed_area=i.FIXED_AREA_TRAIN,
            scale_range=i.SCALE_TRAIN,
            flip_prob=i.RANDOM_FLIP,
            contrast=i.CONTRAST,
            brightness=i.BRIGHTNESS,
            gamma=i.GAMMA,
            **common,
        )

    def draw_augmentation(self, rng: np.random.Generator) -> ClipAugmentation:
        """One clip's random parameters (always the same number of draws, so a clip's parameters
        depend only on its generator state)."""
        return ClipAugmentation(
            area_scale=_uniform(rng, self.scale_range),
            flip=bool(rng.random() < self.flip_prob),
            contrast=_uniform(rng, self.contrast),
            brightness=_uniform(rng, self.brightness),
            gamma=_uniform(rng, self.gamma),
        )

    def __call__(self, video: dict, frames: List[dict], rng: Optional[np.random.Generator] = None) -> List[dict]:
        """Model inputs for ``frames`` of ``video``; training draws the clip's augmentation from
        ``rng`` (required when is_train)."""
        return self.map_packed(video, frames, rng).unpack()

    def map_packed(self, video: dict, frames: List[dict], rng: Optional[np.random.Generator] = None) -> "PackedClip":
        """The clip in its transfer form (see PackedClip); ``__call__`` unpacks it at once."""
        if self.is_train and rng is None:
            raise ValueError("a training ClipMapper needs the clip's random generator")
        aug = self.draw_augmentation(rng) if self.is_train else ClipAugmentation()
        size = (video["height"], video["width"])
        out_size = fixed_area_size(*size, self.fixed_area * aug.area_scale, self.size_divisibility)
        table = aug.intensity_table()
        channels = 1 if self.image_format == "L" else 3
        pixels = np.empty((len(frames), channels) + out_size, dtype=np.uint8)
        for t, frame in enumerate(frames):
            image = self._frame_pixels(video, frame, aug.flip, table, size, out_size)
            pixels[t] = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        boxes = [self._frame_boxes(frame["annotations"], size, out_size, aug.flip) for frame in frames]
        common = {"height": size[0], "width": size[1], "video_id": video["video_id"], "dataset": video["dataset"]}
        return PackedClip(
            pixels=pixels,
            boxes=[[box for box, _ in frame_boxes] for frame_boxes in boxes],
            classes=[[c for _, c in frame_boxes] for frame_boxes in boxes],
            frame_fields=[dict(common, file_name=f["file_name"], frame_idx=f["frame_idx"]) for f in frames],
        )

    def _frame_pixels(
        self,
        video: dict,
        frame: dict,
        flip: bool,
        table: Optional[np.ndarray],
        size: Tuple[int, int],
        out_size: Tuple[int, int],
    ) -> np.ndarray:
        image = read_frame(frame["file_name"], self.image_format)
        if image.shape[:2] != size:
            raise ValueError(
                f"frame {frame['file_name']} is {image.shape[1]}x{image.shape[0]} but its video "
                f"{video['video_id']!r} is annotated as {size[1]}x{size[0]} (width x height)"
            )
        if out_size != size:
            image = cv2.resize(image, (out_size[1], out_size[0]), interpolation=cv2.INTER_LINEAR)
        if flip:
            image = cv2.flip(image, 1)
        return image if table is None else cv2.LUT(image, table)

    @staticmethod
    def _frame_boxes(
        annotations: List[dict], size: Tuple[int, int], out_size: Tuple[int, int], flip: bool
    ) -> List[Tuple[Tuple[float, float, float, float], int]]:
        """(box, class) of each annotation after resize/flip, clipped; empty boxes dropped.
        Plain Python: a frame has a handful of boxes, where NumPy's per-call overhead dominates."""
        (height, width), (out_h, out_w) = size, out_size
        sx, sy = out_w / width, out_h / height
        kept = []
        for annotation in annotations:
            x1, y1, x2, y2 = annotation["bbox"]
            x1, x2 = (out_w - x2 * sx, out_w - x1 * sx) if flip else (x1 * sx, x2 * sx)
            x1, x2 = min(max(x1, 0.0), out_w), min(max(x2, 0.0), out_w)
            y1, y2 = min(max(y1 * sy, 0.0), out_h), min(max(y2 * sy, 0.0), out_h)
            if x2 > x1 and y2 > y1:
                kept.append(((x1, y1, x2, y2), annotation["category_id"]))
        return kept
