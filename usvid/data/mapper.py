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

__all__ = ["ClipMapper", "ClipAugmentation", "read_frame", "fixed_area_size"]

COLOR_FORMATS = ("L", "RGB", "BGR")


def read_frame(file_name: str, image_format: str = "L") -> np.ndarray:
    """Decode a frame as uint8: HxW for "L", HxWx3 for "RGB" / "BGR" (gray files replicated)."""
    if image_format not in COLOR_FORMATS:
        raise ValueError(f"INPUT.FORMAT={image_format!r} is not one of {list(COLOR_FORMATS)}")
    image = cv2.imread(file_name, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"cannot read frame {file_name} (missing, or not an image OpenCV can decode)")
    if image.dtype == np.uint16:  # 16-bit exports: keep the 8 most significant bits
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image_format == "L":
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image_format == "RGB" else image


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


class ClipMapper:
    """Maps a clip (a video dict and some of its frame dicts) to model-ready frame dicts."""

    def __init__(self, *, is_train: bool, image_format: str = "L", fixed_area: float = 256 * 256,
                 size_divisibility: int = 32, scale_range: Sequence[float] = (1.0, 1.0),
                 flip_prob: float = 0.0, contrast: Sequence[float] = (1.0, 1.0),
                 brightness: Sequence[float] = (1.0, 1.0), gamma: Sequence[float] = (1.0, 1.0)):
        if image_format not in COLOR_FORMATS:
            raise ValueError(f"INPUT.FORMAT={image_format!r} is not one of {list(COLOR_FORMATS)}")
        self.is_train = is_train
        self.image_format = image_format
        self.fixed_area = fixed_area
        self.size_divisibility = size_divisibility
        self.scale_range, self.flip_prob = scale_range, flip_prob
        self.contrast, self.brightness, self.gamma = contrast, brightness, gamma

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "ClipMapper":
        i = cfg.INPUT
        common = dict(is_train=is_train, image_format=i.FORMAT, size_divisibility=i.SIZE_DIVISIBILITY)
        if not is_train:
            return cls(fixed_area=i.FIXED_AREA_TEST, **common)
        return cls(fixed_area=i.FIXED_AREA_TRAIN, scale_range=i.SCALE_TRAIN, flip_prob=i.RANDOM_FLIP,
                   contrast=i.CONTRAST, brightness=i.BRIGHTNESS, gamma=i.GAMMA, **common)

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

    def __call__(self, video: dict, frames: List[dict],
                 rng: Optional[np.random.Generator] = None) -> List[dict]:
        """Model inputs for ``frames`` of ``video``; training draws the clip's augmentation from
        ``rng`` (required when is_train)."""
        if self.is_train and rng is None:
            raise ValueError("a training ClipMapper needs the clip's random generator")
        aug = self.draw_augmentation(rng) if self.is_train else ClipAugmentation()
        height, width = video["height"], video["width"]
        out_h, out_w = fixed_area_size(height, width, self.fixed_area * aug.area_scale, self.size_divisibility)
        table = aug.intensity_table()
        return [self._map_frame(video, frame, aug, table, (height, width), (out_h, out_w)) for frame in frames]

    def _map_frame(self, video: dict, frame: dict, aug: ClipAugmentation, table: Optional[np.ndarray],
                   size: Tuple[int, int], out_size: Tuple[int, int]) -> dict:
        image = read_frame(frame["file_name"], self.image_format)
        if image.shape[:2] != size:
            raise ValueError(
                f"frame {frame['file_name']} is {image.shape[1]}x{image.shape[0]} but its video "
                f"{video['video_id']!r} is annotated as {size[1]}x{size[0]} (width x height)"
            )
        (height, width), (out_h, out_w) = size, out_size
        if (out_h, out_w) != (height, width):
            image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        if aug.flip:
            image = cv2.flip(image, 1)
        if table is not None:
            image = cv2.LUT(image, table)
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
        return {
            "image": tensor,
            "instances": self._instances(frame["annotations"], (height, width), (out_h, out_w), aug.flip),
            "height": height,
            "width": width,
            "file_name": frame["file_name"],
            "video_id": video["video_id"],
            "frame_idx": frame["frame_idx"],
            "dataset": video["dataset"],
        }

    @staticmethod
    def _instances(annotations: List[dict], size: Tuple[int, int], out_size: Tuple[int, int],
                   flip: bool) -> Instances:
        (height, width), (out_h, out_w) = size, out_size
        boxes = np.array([a["bbox"] for a in annotations], dtype=np.float32).reshape(-1, 4)
        classes = np.array([a["category_id"] for a in annotations], dtype=np.int64)
        boxes *= np.array([out_w / width, out_h / height, out_w / width, out_h / height], dtype=np.float32)
        if flip:
            boxes = np.stack([out_w - boxes[:, 2], boxes[:, 1], out_w - boxes[:, 0], boxes[:, 3]], axis=1)
        boxes = np.clip(boxes, 0, [out_w, out_h, out_w, out_h]).astype(np.float32)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Instances(
            (out_h, out_w),
            gt_boxes=Boxes(torch.from_numpy(boxes[keep])),
            gt_classes=torch.from_numpy(classes[keep]),
        )
