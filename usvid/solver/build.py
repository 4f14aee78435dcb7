"""Optimizers and LR schedulers built from ``cfg.SOLVER``."""

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type

import torch
from torch import nn

from ..config import ConfigError
from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR, WarmupStepWithFixedGammaLR

__all__ = ["build_optimizer", "build_lr_scheduler", "get_default_optimizer_params", "get_clip_grad_norm"]

logger = logging.getLogger(__name__)

NORM_MODULE_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def _is_norm(module: nn.Module) -> bool:
    # Custom norms (e.g. a FrozenBatchNorm2d) do not subclass torch's; their names say "Norm".
    return isinstance(module, NORM_MODULE_TYPES) or "norm" in type(module).__name__.lower()


def get_default_optimizer_params(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
    lr_multipliers: Sequence[Tuple[str, float]] = (),
) -> List[Dict[str, Any]]:
    """Parameter groups with per-parameter LR and weight decay.

    Parameters of normalisation layers get ``weight_decay_norm``; other biases get
    ``weight_decay_bias`` (None: ``weight_decay``); every bias trains with ``base_lr *
    bias_lr_factor``; the LR is further multiplied by the factor of every ``(substring, factor)``
    in ``lr_multipliers`` whose substring occurs in the parameter's name. Shared parameters
    appear once, frozen ones not at all, and parameters with identical hyper-parameters share
    one group (fewer groups let foreach/fused optimizer kernels batch more tensors).
    """
    if weight_decay_bias is None:
        weight_decay_bias = weight_decay
    groups: Dict[Tuple[float, float], List[nn.Parameter]] = {}
    seen = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            lr = base_lr * (bias_lr_factor if param_name == "bias" else 1.0)
            for substring, factor in lr_multipliers:
                if substring in full_name:
                    lr *= factor
            if _is_norm(module):
                decay = weight_decay_norm
            elif param_name == "bias":
                decay = weight_decay_bias
            else:
                decay = weight_decay
            groups.setdefault((lr, decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]


def get_clip_grad_norm(cfg) -> Optional[float]:
    """The max global 2-norm for ``SimpleTrainer(clip_grad_norm=...)``; None when the trainer
    should not clip (clipping disabled, or done by the optimizer: "value" or non-2 norms)."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "norm" and float(clip.NORM_TYPE) == 2.0:
        return float(clip.CLIP_VALUE)
    return None


def _optimizer_side_clipper(cfg) -> Optional[Callable[[Iterable[torch.Tensor]], Any]]:
    """The clipping the optimizer must do itself (everything get_clip_grad_norm leaves out)."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED or get_clip_grad_norm(cfg) is not None:
        return None
    if clip.CLIP_TYPE == "value":
        return lambda params: nn.utils.clip_grad_value_(params, float(clip.CLIP_VALUE))
    if clip.CLIP_TYPE == "norm":
        return lambda params: nn.utils.clip_grad_norm_(params, float(clip.CLIP_VALUE), float(clip.NORM_TYPE))
    raise ValueError(f"Unknown SOLVER.CLIP_GRADIENTS.CLIP_TYPE {clip.CLIP_TYPE!r}; valid: 'norm', 'value'")


def _with_gradient_clipping(optimizer_cls: Type[torch.optim.Optimizer], clipper) -> Type[torch.optim.Optimizer]:
    """A subclass of ``optimizer_cls`` that clips all gradients right before each step (so it
    sees unscaled gradients under a GradScaler, which unscales before calling step)."""

    def step(self, closure=None):
        clipper([p for group in self.param_groups for p in group["params"] if p.grad is not None])
        return super(clipped_cls, self).step(closure)

    clipped_cls = type(optimizer_cls.__name__ + "WithGradientClip", (optimizer_cls,), {"step": step})
    return clipped_cls


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """SGD or AdamW (``SOLVER.OPTIMIZER``) over :func:`get_default_optimizer_params` groups."""
    solver = cfg.SOLVER
    params = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay=solver.WEIGHT_DECAY,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        bias_lr_factor=solver.BIAS_LR_FACTOR,
        weight_decay_bias=solver.WEIGHT_DECAY_BIAS,
        lr_multipliers=[(str(s), float(f)) for s, f in solver.LR_MULTIPLIERS],
    )
    if solver.OPTIMIZER == "SGD":
        optimizer_cls, kwargs = torch.optim.SGD, {"momentum": solver.MOMENTUM, "nesterov": solver.NESTEROV}
    elif solver.OPTIMIZER == "AdamW":
        optimizer_cls, kwargs = torch.optim.AdamW, {"betas": tuple(solver.ADAM_BETA)}
    else:
        raise ValueError(f"Unknown SOLVER.OPTIMIZER {solver.OPTIMIZER!r}; valid: 'SGD', 'AdamW'")
    clipper = _optimizer_side_clipper(cfg)
    if clipper is not None:
        optimizer_cls = _with_gradient_clipping(optimizer_cls, clipper)
    if _fused_kernels_apply(params):
        kwargs["fused"] = True
    return optimizer_cls(params, lr=solver.BASE_LR, **kwargs)


# Devices whose parameters the fused optimizer kernels of torch.optim update.
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def _fused_kernels_apply(param_groups) -> bool:
    """Whether every parameter can take the fused optimizer step: one kernel over all parameters
    instead of torch's default on CPU, a Python loop of small operations per parameter tensor
    (the phantom UltraDet's 119 tensors: an AdamW step of 8.5 ms -> 2.5 ms on one thread; within
    the noise of its whole 2-thread training step, benchmarks/RESULTS.md "Training steps", but
    more for models of many small tensors). The same update rule."""
    params = [p for group in param_groups for p in group["params"]]
    return bool(params) and all(p.device.type in FUSED_OPTIMIZER_DEVICES and p.is_floating_point() for p in params)


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """``SOLVER.LR_SCHEDULER_NAME`` with the configured warm-up."""
    solver = cfg.SOLVER
    warmup = {
        "warmup_factor": solver.WARMUP_FACTOR,
        "warmup_iters": min(solver.WARMUP_ITERS, solver.MAX_ITER),
        "warmup_method": solver.WARMUP_METHOD,
    }
    if solver.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        steps = [s for s in solver.STEPS if s <= solver.MAX_ITER]
        if len(steps) != len(solver.STEPS):
            logger.warning(
                f"SOLVER.STEPS {tuple(solver.STEPS)} has values beyond SOLVER.MAX_ITER "
                f"{solver.MAX_ITER}; they are ignored."
            )
        return WarmupMultiStepLR(optimizer, steps, solver.GAMMA, **warmup)
    if solver.LR_SCHEDULER_NAME == "WarmupCosineLR":
        return WarmupCosineLR(optimizer, solver.MAX_ITER, end_factor=_cosine_end_factor(solver), **warmup)
    if solver.LR_SCHEDULER_NAME == "WarmupStepWithFixedGammaLR":
        return WarmupStepWithFixedGammaLR(optimizer, solver.GAMMA, solver.NUM_DECAYS, solver.MAX_ITER, **warmup)
    raise ValueError(
        f"Unknown SOLVER.LR_SCHEDULER_NAME {solver.LR_SCHEDULER_NAME!r}; valid: 'WarmupMultiStepLR', "
        "'WarmupCosineLR', 'WarmupStepWithFixedGammaLR'"
    )


def _cosine_end_factor(solver) -> float:
    """SOLVER.BASE_LR_END as a fraction of SOLVER.BASE_LR, checked to lie in [0, BASE_LR]."""
    if not 0.0 <= solver.BASE_LR_END <= solver.BASE_LR:
        raise ConfigError(
            f"SOLVER.BASE_LR_END={solver.BASE_LR_END} must lie between 0 and SOLVER.BASE_LR={solver.BASE_LR} "
            "(the cosine schedule ends there)"
        )
    return solver.BASE_LR_END / solver.BASE_LR if solver.BASE_LR > 0 else 0.0
