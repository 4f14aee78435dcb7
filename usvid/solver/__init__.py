from .build import build_lr_scheduler, build_optimizer, get_clip_grad_norm, get_default_optimizer_params
from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR, warmup_factor_at_iter

__all__ = [
    "build_optimizer",
    "build_lr_scheduler",
    "get_default_optimizer_params",
    "get_clip_grad_norm",
    "WarmupMultiStepLR",
    "WarmupCosineLR",
    "warmup_factor_at_iter",
]
