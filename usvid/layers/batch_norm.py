"""Normalisation layers: frozen batch norm for fine-tuning pretrained backbones with the tiny
per-device batches of video training, and ``get_norm`` to choose a norm from a config string."""

import math
from typing import Callable, Optional, Union

import torch
from torch import nn

_NORM_NAMES = ("BN", "FrozenBN", "GN", "")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (all buffers, no parameters).

    Equals ``nn.BatchNorm2d`` in eval mode, but nothing changes in training: with 1-2 clips
    per device, batch statistics would be too noisy to update. Loads BatchNorm2d state dicts
    (their ``num_batches_tracked`` is ignored).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        # ones - eps: a freshly built layer is exactly the identity.
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Folded into one affine transform: cheaper than F.batch_norm and the same result.
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Return ``module`` with every BatchNorm2d / SyncBatchNorm replaced by a
        FrozenBatchNorm2d holding its statistics (in place for children; a BN passed
        directly is returned converted)."""
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            frozen = cls(module.num_features, eps=module.eps)
            if module.affine:
                frozen.weight.copy_(module.weight.detach())
                frozen.bias.copy_(module.bias.detach())
            if module.running_mean is not None:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
            return frozen
        for name, child in module.named_children():
            converted = cls.convert_frozen_batchnorm(child)
            if converted is not child:
                module.add_module(name, converted)
        return module


convert_frozen_batchnorm = FrozenBatchNorm2d.convert_frozen_batchnorm


def _group_count(channels: int, max_groups: int = 32) -> int:
    """32 groups (Wu & He) when possible; fewer for small or indivisible channel counts."""
    return math.gcd(channels, max_groups)


def get_norm(norm: Union[str, Callable[[int], nn.Module], None], out_channels: int) -> Optional[nn.Module]:
    """Build the normalisation named by a config string for ``out_channels`` channels.

    ``"BN"``: BatchNorm2d; ``"FrozenBN"``: FrozenBatchNorm2d; ``"GN"``: GroupNorm with 32 groups
    (or the largest power of two <= 32 dividing the channels); ``""`` / ``None``: no norm
    (returns ``None``). A callable is called with ``out_channels``.
    """
    if norm is None or norm == "":
        return None
    if callable(norm):
        return norm(out_channels)
    if norm == "BN":
        return nn.BatchNorm2d(out_channels)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(out_channels)
    if norm == "GN":
        return nn.GroupNorm(_group_count(out_channels), out_channels)
    raise ValueError(f"get_norm: unknown norm {norm!r}; valid names are {_NORM_NAMES} or a callable")
