"""Precise BatchNorm statistics: recomputed over training batches with the final weights."""

import itertools
import logging
from typing import Iterable, List

import torch
from torch import nn

from usvid.utils import comm
from usvid.utils.events import EventStorage
from usvid.utils.periodic import fires_after

from ..train_loop import HookBase
from .ema import EMA

__all__ = ["PreciseBN", "update_bn_stats"]

logger = logging.getLogger(__name__)


def _bn_buffer_names(model: nn.Module) -> List[str]:
    """The state-dict names of the BatchNorm statistics of ``model`` (unwrapped from DDP)."""
    names = []
    for prefix, module in comm.unwrap_model(model).named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            names += [f"{prefix}.{name}".lstrip(".") for name, _ in module.named_buffers(recurse=False)]
    return names


def _bn_modules(model: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]


@torch.no_grad()
def update_bn_stats(model: nn.Module, data_loader: Iterable, num_iters: int = 200) -> None:
    """Recompute the running statistics of the model's BatchNorm layers (in training mode) as
    the exact average of the batch statistics over ``num_iters`` batches.

    Training-time running stats are an exponential average over changing weights; the precise
    average with the final weights fits evaluation better (He et al., "Rethinking ImageNet
    Pre-training"). The model is called as in training; its outputs are ignored."""
    bn_layers = _bn_modules(model)
    if not bn_layers:
        return
    momenta = [bn.momentum for bn in bn_layers]
    for bn in bn_layers:
        bn.momentum = 1.0  # running stats := this batch's stats, averaged below
    means = [torch.zeros_like(bn.running_mean) for bn in bn_layers]
    variances = [torch.zeros_like(bn.running_var) for bn in bn_layers]
    batches = 0
    try:
        for batches, inputs in enumerate(itertools.islice(data_loader, num_iters), start=1):
            model(inputs)
            for mean, var, bn in zip(means, variances, bn_layers):
                mean += (bn.running_mean - mean) / batches
                var += (bn.running_var - var) / batches
        if batches != num_iters:
            raise ValueError(f"update_bn_stats: the data loader ended after {batches} of {num_iters} batches")
        for mean, var, bn in zip(means, variances, bn_layers):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    finally:
        for bn, momentum in zip(bn_layers, momenta):
            bn.momentum = momentum


class PreciseBN(HookBase):
    """Every ``period`` iterations and after the last one, recompute BatchNorm statistics over
    ``num_iter`` batches of ``data_loader`` (see ``update_bn_stats``). Disabled (with a log
    line) when the model has no BatchNorm layer in training mode.

    With an ``EMA`` hook, evaluations use the EMA weights, so the statistics are recomputed for
    those and stored into the EMA copy. The number of batches used so far is checkpointed: a
    resumed run skips them, so it sees the batches the uninterrupted run would (``data_loader``
    must then give the same batches each time it is iterated, e.g. seeded)."""

    def __init__(self, period: int, model: nn.Module, data_loader: Iterable, num_iter: int):
        self._disabled = not _bn_modules(model)
        if self._disabled:
            logger.info("PreciseBN is disabled because the model has no BatchNorm layer in training mode.")
        self._period = period
        self._model = model
        self._data_loader = data_loader
        self._num_iter = num_iter
        self._data_iter = None
        self._batches_used = 0

    def after_step(self):
        if not self._disabled and fires_after(self.trainer.iter, self._period, self.trainer.max_iter):
            self.update_stats()

    def update_stats(self):
        if self._data_iter is None:  # reused so every update sees new batches
            self._data_iter = itertools.islice(iter(self._data_loader), self._batches_used, None)
        logger.info(f"Running precise-BN for {self._num_iter} iterations...")
        ema = next((h for h in self.trainer.hooks if isinstance(h, EMA)), None)
        with EventStorage():  # the model may put scalars while running: discard them
            if ema is None:
                update_bn_stats(self._model, self._data_iter, self._num_iter)
            else:
                with ema.apply_to_model():
                    update_bn_stats(self._model, self._data_iter, self._num_iter)
                    ema.store_from_model(_bn_buffer_names(self._model))
        self._batches_used += self._num_iter

    def state_dict(self):
        return {"batches_used": self._batches_used}

    def load_state_dict(self, state_dict):
        self._batches_used = int(state_dict["batches_used"])
        self._data_iter = None
