"""``AMPTrainer``: ``SimpleTrainer``'s step with the forward pass under autocast, and the loss
scaling that float16 needs around the backward pass, the clipping and the optimizer step."""

from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from .train_loop import SimpleTrainer

__all__ = ["AMPTrainer"]


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
