"""``AMPTrainer``: ``SimpleTrainer``'s step with the forward pass under autocast, and the loss
scaling that float16 needs around the backward pass, the clipping and the optimizer step."""

import logging
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

import torch
from torch import nn

from .train_loop import SimpleTrainer

__all__ = ["AMPTrainer", "slow_bfloat16_reason", "native_bfloat16", "autocast_precision", "AMP_PRECISIONS"]

logger = logging.getLogger(__name__)

CPUINFO = "/proc/cpuinfo"  # where the CPU's feature flags are read (tests point it at a fake file)
# CPU features that run bfloat16 matrix products natively: without them oneDNN converts every
# operand and bf16 autocast trains slower than float32 instead of faster.
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cpu_flags() -> Optional[FrozenSet[str]]:
    """The feature flags of the first CPU in CPUINFO; None where it cannot be read (not Linux)."""
    try:
        with open(CPUINFO, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def native_bfloat16(device_type: str) -> Tuple[Optional[bool], str]:
    """Whether ``device_type`` ("cpu", "cuda", ...) computes bfloat16 natively (None: it cannot
    be told), and why, in words for the log."""
    if device_type == "cuda" and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, "this GPU has native bfloat16 arithmetic"
        return False, "this GPU has no native bfloat16 arithmetic"
    if device_type == "cpu":
        flags = _cpu_flags()
        if flags is None:
            return None, f"the CPU's feature flags cannot be read from {CPUINFO}"
        if flags & NATIVE_BF16_CPU_FLAGS:
            return True, f"this CPU has {sorted(flags & NATIVE_BF16_CPU_FLAGS)} in {CPUINFO}"
        return False, f"this CPU has none of the {sorted(NATIVE_BF16_CPU_FLAGS)} flags of {CPUINFO}"
    return None, f"native bfloat16 on {device_type!r} devices is not known"


def slow_bfloat16_reason(device_type: str) -> Optional[str]:
    """Why bfloat16 autocast would be slower than float32 on ``device_type`` ("cpu", "cuda"), or
    None where it is fast or it cannot be told."""
    native, why = native_bfloat16(device_type)
    return why if native is False else None


# SOLVER.AMP.PRECISION -> autocast dtype; "auto" is resolved per device by autocast_precision.
AMP_PRECISIONS = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def autocast_precision(enabled: bool, precision: str, device_type: str) -> Tuple[Optional[torch.dtype], str]:
    """The autocast dtype that SOLVER.AMP (``enabled``, ``precision``) asks for on
    ``device_type`` (None: train in float32), and why, for the log. "auto" is bfloat16 where the
    device computes it natively (a CPU with AVX512-BF16 or AMX, a GPU from Ampere on), where it
    trains faster, and float32 elsewhere, where bfloat16 would train slower."""
    if precision != "auto" and precision not in AMP_PRECISIONS:
        raise ValueError(f"SOLVER.AMP.PRECISION is {precision!r}; valid: {sorted(AMP_PRECISIONS) + ['auto']}")
    if not enabled:
        return None, "SOLVER.AMP.ENABLED is False"
    if precision != "auto":
        return AMP_PRECISIONS[precision], f"SOLVER.AMP.PRECISION is {precision}"
    native, why = native_bfloat16(device_type)
    if native:
        return torch.bfloat16, f"SOLVER.AMP.PRECISION auto and {why}"
    return None, f"SOLVER.AMP.PRECISION auto and {why}"


class AMPTrainer(SimpleTrainer):
    """``SimpleTrainer`` with the forward pass under ``torch.autocast``.

    float16 uses a ``torch.amp.GradScaler`` (created for the model's device if not given) to
    keep small gradients representable; bfloat16 has float32's range and needs no scaler, so
    it also runs on CPU. The autocast device type is taken from the model's parameters.
    """

    def __init__(
        self,
        model: nn.Module,
        *args: Any,
        grad_scaler: Optional[torch.amp.GradScaler] = None,
        precision: torch.dtype = torch.float16,
        **kwargs: Any,
    ):
        """``model`` and ``args`` / ``kwargs`` as for ``SimpleTrainer`` (whose defaults they keep);
        ``grad_scaler`` and ``precision`` by keyword."""
        if precision not in (torch.float16, torch.bfloat16):
            raise ValueError(f"AMPTrainer precision must be torch.float16 or torch.bfloat16, got {precision}")
        super().__init__(model, *args, **kwargs)
        self.precision = precision
        self.device_type = next(model.parameters()).device.type
        slow = slow_bfloat16_reason(self.device_type) if precision == torch.bfloat16 else None
        if slow is not None:
            logger.warning(
                f"bfloat16 autocast (SOLVER.AMP.PRECISION bfloat16) will likely train slower than float32: {slow}. "
                "Set SOLVER.AMP.ENABLED False to train in float32."
            )
        if grad_scaler is None and precision == torch.float16:
            grad_scaler = torch.amp.GradScaler(self.device_type)
        self.grad_scaler = grad_scaler

    def _compute_losses(self, data: Any) -> Dict[str, torch.Tensor]:
        with torch.autocast(device_type=self.device_type, dtype=self.precision):
            return super()._compute_losses(data)

    def _backward(self, losses: torch.Tensor) -> None:
        if self.grad_scaler is None:
            losses.backward()
        else:
            self.grad_scaler.scale(losses).backward()

    def _clip_gradients(self) -> Optional[torch.Tensor]:
        if self.clip_grad_norm is not None and self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
        return super()._clip_gradients()

    def _optimizer_step(self) -> None:
        if self.grad_scaler is None:
            self.optimizer.step()
        else:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
