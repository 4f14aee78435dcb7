"""An exponential moving average of the model's weights, kept and checkpointed by a hook."""

from contextlib import contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import nn

from usvid.utils import comm

from ..train_loop import HookBase

__all__ = ["EMA"]


class EMA(HookBase):
    """Exponential moving average of the model's weights: after every optimizer step,
    ``ema = decay * ema + (1 - decay) * weight`` for each floating-point parameter and buffer
    (integer buffers such as BatchNorm's batch counter are copied).

    ``EvalHook`` evaluates with the EMA weights (``apply_to_model``); they are part of
    ``state_dict``, so checkpoints carry them. ``device`` keeps the EMA copy elsewhere (e.g.
    "cpu" to save accelerator memory); default: next to the weights."""

    priority = 20

    def __init__(self, decay: float = 0.999, device: Optional[str] = None):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self._decay = decay
        self._device = device
        self._model: Optional[nn.Module] = None
        self.weights: Optional[Dict[str, torch.Tensor]] = None  # name -> EMA tensor
        # (EMA tensors, model tensors) of the floating-point / integer entries, resolved once in
        # before_train: the model's state_dict tensors are updated in place during training.
        self._float_pairs: Tuple[List[torch.Tensor], List[torch.Tensor]] = ([], [])
        self._int_pairs: List[Tuple[torch.Tensor, torch.Tensor]] = []

    def before_train(self):
        self._model = comm.unwrap_model(self.trainer.model)
        model_state = self._model.state_dict()
        if self.weights is None:
            self.weights = {name: t.detach().clone() for name, t in model_state.items()}
        self.weights = {name: t.to(self._device or model_state[name].device) for name, t in self.weights.items()}
        float_names = [n for n, t in model_state.items() if t.is_floating_point()]
        self._float_pairs = ([self.weights[n] for n in float_names], [model_state[n] for n in float_names])
        self._int_pairs = [(self.weights[n], t) for n, t in model_state.items() if not t.is_floating_point()]

    @torch.no_grad()
    def after_step(self):
        ema_tensors, model_tensors = self._float_pairs
        if self._device is not None:
            model_tensors = [t.to(self._device) for t in model_tensors]
        # lerp: ema + (1 - decay) * (w - ema) == decay * ema + (1 - decay) * w, one fused pass
        torch._foreach_lerp_(ema_tensors, model_tensors, 1.0 - self._decay)
        for ema_tensor, model_tensor in self._int_pairs:
            ema_tensor.copy_(model_tensor)

    @torch.no_grad()
    def store_from_model(self, names: Iterable[str]) -> None:
        """Take the model's current values of the state entries ``names`` as their EMA values
        (e.g. BatchNorm statistics recomputed for the EMA weights while they were applied)."""
        model_state = self._model.state_dict()
        for name in names:
            self.weights[name].copy_(model_state[name])

    @contextmanager
    def apply_to_model(self) -> Iterator[None]:
        """Swap the EMA weights into the model for the block, then restore the originals."""
        model_state = self._model.state_dict()
        backup = {name: t.detach().clone() for name, t in model_state.items()}
        with torch.no_grad():
            for name, t in model_state.items():
                t.copy_(self.weights[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, t in model_state.items():
                    t.copy_(backup[name])

    def state_dict(self):
        return {"weights": self.weights} if self.weights is not None else {}

    def load_state_dict(self, state_dict):
        self.weights = {name: t.detach().clone() for name, t in state_dict["weights"].items()}
