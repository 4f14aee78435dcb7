"""``ShapeSpec``: what a module's output looks like, so the next module can size itself."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class ShapeSpec:
    """Channels, spatial size and stride of a feature map (detectron2's ``ShapeSpec``);
    fields left ``None`` are unknown or irrelevant."""

    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None
