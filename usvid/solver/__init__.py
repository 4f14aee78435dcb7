from .build import build_lr_scheduler, build_optimizer, get_clip_grad_norm, get_default_optimizer_params
from .lr_scheduler import (
    ConfigFollowingLR,
    WarmupCosineLR,
    WarmupMultiStepLR,
    WarmupStepWithFixedGammaLR,
    warmup_factor_at_iter,
)
from .param_scheduler import LRMultiplier, ParamScheduler, WarmupParamScheduler

__all__ = [
    "build_optimizer",
    "build_lr_scheduler",
    "get_default_optimizer_params",
    "get_clip_grad_norm",
    "ConfigFollowingLR",
    "WarmupMultiStepLR",
    "WarmupCosineLR",
    "WarmupStepWithFixedGammaLR",
    "warmup_factor_at_iter",
    "LRMultiplier",
    "ParamScheduler",
    "WarmupParamScheduler",
]
