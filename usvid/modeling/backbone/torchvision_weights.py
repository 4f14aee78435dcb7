"""Load a torchvision ImageNet ResNet-18/34 state dict into usvid's backbone (and res5 stage).

torchvision cannot be imported on every machine, so the loader takes a plain state dict (e.g.
``torch.load("resnet18-f37072fd.pth")``) and maps its keys by name.
"""

from typing import Dict, Optional

import torch
from torch import nn

# Extra prefixes some checkpoints put in front of torchvision's names (DataParallel, wrappers).
_STRIPPED_PREFIXES = ("module.", "backbone.", "model.")


def _strip_prefixes(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _STRIPPED_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def _adapt_input_channels(key: str, value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RGB stem -> grayscale stem: a grey pixel g fed as (g, g, g) to the RGB filter gives the
    same response as g fed to the channel-summed filter, so summing keeps ImageNet features."""
    if key == "conv1.weight" and value.dim() == 4 and value.shape[1] == 3 and target.shape[1] == 1:
        return value.sum(dim=1, keepdim=True)
    return value


def load_torchvision_resnet_weights(
    backbone: nn.Module, state_dict: Dict[str, torch.Tensor], res5: Optional[nn.Module] = None
) -> Dict[str, list]:
    """Copy a torchvision ResNet state dict into ``backbone`` (and optionally ``res5``) by name.

    Key mapping (after stripping any ``module.`` / ``backbone.`` / ``model.`` prefixes):

    ======================================  ===============================================
    torchvision key                         usvid destination
    ======================================  ===============================================
    ``conv1.weight``                        ``backbone.conv1.weight`` (RGB filters summed to
                                            one channel when the backbone takes grayscale)
    ``bn1.*``                               ``backbone.bn1.*``
    ``layer1.*`` / ``layer2.*`` / ``layer3.*``  ``backbone.layer1.*`` .. ``backbone.layer3.*``
    ``layer4.*``                            ``res5.*`` (the RoI head's res5 stage) when
                                            ``res5`` is given, else unexpected
    ``fc.*``                                dropped (ImageNet classifier)
    ``*.num_batches_tracked``               dropped (only BatchNorm's cumulative-average mode
                                            reads it; FrozenBatchNorm2d has none)
    ======================================  ===============================================

    Returns a report ``{"loaded": [...], "missing_keys": [...], "unexpected_keys": [...],
    "shape_mismatch": [(key, source_shape, destination_shape), ...]}`` with usvid key names for
    missing keys and torchvision names for the others. Tensors whose shapes differ (e.g. a
    reduced-width backbone) are reported and left untouched rather than raising, because partial
    loading is the normal case for the CPU-sized models.
    """
    targets = dict(backbone.state_dict())
    if res5 is not None:
        targets.update({f"layer4.{k}": v for k, v in res5.state_dict().items()})
    report = {"loaded": [], "missing_keys": [], "unexpected_keys": [], "shape_mismatch": []}
    new_values = {}
    for raw_key, value in state_dict.items():
        key = _strip_prefixes(raw_key)
        if key.startswith("fc.") or key.endswith("num_batches_tracked"):
            continue
        if key not in targets:
            report["unexpected_keys"].append(key)
            continue
        value = _adapt_input_channels(key, value, targets[key])
        if tuple(value.shape) != tuple(targets[key].shape):
            report["shape_mismatch"].append((key, tuple(value.shape), tuple(targets[key].shape)))
            continue
        new_values[key] = value
        report["loaded"].append(key)
    with torch.no_grad():
        for key, value in new_values.items():
            targets[key].copy_(value.to(targets[key]))
    seen = set(new_values) | {k for k, _, _ in report["shape_mismatch"]}
    for key in targets:
        if key not in seen and not key.endswith("num_batches_tracked"):
            report["missing_keys"].append(key if not key.startswith("layer4.") else "res5." + key[len("layer4.") :])
    return report
