"""Thin wrappers that fold common patterns into one module."""

from typing import Callable, Optional

import torch
from torch import nn


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional norm module and activation (detectron2's
    ``layers.Conv2d``), so conv-norm-act stacks read as one layer and keep detectron2's
    state-dict names (``conv.weight``, ``conv.norm.*``)."""

    def __init__(
        self,
        *args,
        norm: Optional[nn.Module] = None,
        activation: Optional[Callable] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
