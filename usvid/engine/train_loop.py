"""The minimal training loop: ``TrainerBase`` (iterations + hooks) and ``SimpleTrainer`` (one
optimisation step per iteration); ``AMPTrainer`` (the same under autocast) is in amp_trainer.py.

Everything optional (timing, LR scheduling, checkpoints, evaluation, writing metrics) lives in
hooks, so the loop itself stays small and the per-iteration overhead stays a few microseconds.
"""

import logging
import math
import time
import weakref
from contextlib import nullcontext
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn

from usvid.utils import comm
from usvid.utils.events import EventStorage, get_event_storage
from usvid.utils.periodic import fires_after

__all__ = ["HookBase", "TrainerBase", "SimpleTrainer"]

logger = logging.getLogger(__name__)


class HookBase:
    """Base class for hooks that a ``TrainerBase`` calls around training and around each step.

    ``self.trainer`` is a weak proxy to the trainer (set by ``register_hooks``), so hooks never
    keep a finished trainer alive. ``before_step`` runs on every iteration before the step and
    must be cheap; put heavy work in ``after_step``. Hooks run in ascending ``priority`` (equal
    priorities in registration order); the same order applies to every callback.
    """

    trainer: Optional["TrainerBase"] = None  # set by register_hooks
    priority: int = 50

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_backward(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        pass


_CALLBACKS = ("before_train", "after_train", "before_step", "after_backward", "after_step")


def _hook_state_keys(hooks: List[HookBase]) -> List[str]:
    """A checkpoint key per hook: its class qualname, with ``#n`` for the n-th repeat of a class
    (``EvalHook``, ``EvalHook#1``) so that two hooks of one class keep separate states."""
    seen: Dict[str, int] = {}
    keys = []
    for hook in hooks:
        name = type(hook).__qualname__
        count = seen.get(name, 0)
        seen[name] = count + 1
        keys.append(name if count == 0 else f"{name}#{count}")
    return keys


class TrainerBase:
    """Runs ``run_step`` for ``max_iter - start_iter`` iterations inside an ``EventStorage``,
    calling the registered hooks around training and around each step.

    Attributes: ``iter`` (the current iteration; ``max_iter`` after a successful run),
    ``start_iter``, ``max_iter``, ``storage``, ``should_stop`` (a hook sets it to end training
    cleanly after the current step).
    """

    def __init__(self) -> None:
        self._hooks: List[HookBase] = []
        # Per callback, only the hooks that override it: the per-step dispatch then skips the
        # no-op base methods entirely, which matters for a step of a fraction of a millisecond.
        self._dispatch: Dict[str, List[Any]] = {name: [] for name in _CALLBACKS}
        self.iter: int = 0
        self.start_iter: int = 0
        self.max_iter: Optional[int] = None
        self.storage: Optional[EventStorage] = None
        self.should_stop = False
        # Metric histories from a loaded checkpoint, put into the storage that train() opens.
        self._storage_state: Optional[Dict[str, Any]] = None

    def register_hooks(self, hooks: Iterable[Optional[HookBase]]) -> None:
        """Add hooks (None entries are dropped) and re-sort all hooks by priority (stable)."""
        new_hooks = [h for h in hooks if h is not None]
        for hook in new_hooks:
            # A weak proxy avoids a reference cycle between trainer and hooks, which would keep
            # the whole trainer (model, data) alive until the cycle collector runs.
            hook.trainer = weakref.proxy(self)
        self._hooks = sorted(self._hooks + new_hooks, key=lambda h: h.priority)
        self._dispatch = {
            name: [getattr(h, name) for h in self._hooks if getattr(type(h), name) is not getattr(HookBase, name)]
            for name in _CALLBACKS
        }

    @property
    def hooks(self) -> List[HookBase]:
        """The registered hooks in the order they run."""
        return list(self._hooks)

    def train(self, start_iter: int, max_iter: int) -> None:
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self.should_stop = False
        with EventStorage(start_iter) as self.storage:
            if self._storage_state is not None:
                self.storage.load_state_dict(self._storage_state)
                self._storage_state = None
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                    if self.should_stop:
                        logger.info(f"Training stopped early by a hook after iteration {self.iter}")
                        break
                # iter == max_iter tells after_train hooks that training finished (a failed run
                # leaves iter at the failing iteration, an early stop after iteration k at k + 1).
                self.iter = self.iter + 1 if start_iter < max_iter else max_iter
            except Exception:
                logger.exception(f"Exception during training at iteration {self.iter}:")
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for callback in self._dispatch["before_train"]:
            callback()

    def after_train(self) -> None:
        # Values put in after_train (e.g. the final evaluation) belong to iteration `iter`.
        self.storage.iter = self.iter
        # Every hook's after_train runs even when one of them fails (or a signal stops the final
        # evaluation): writers still flush and close, handlers are still restored. The first
        # error is raised afterwards.
        error: Optional[BaseException] = None
        for callback in self._dispatch["after_train"]:
            try:
                callback()
            except BaseException as e:  # noqa: B036 (re-raised below)
                if error is None:
                    error = e
                else:
                    logger.exception(f"A second error in after_train ({callback.__qualname__}):")
        if error is not None:
            raise error

    def before_step(self) -> None:
        self.storage.iter = self.iter
        for callback in self._dispatch["before_step"]:
            callback()

    def after_backward(self) -> None:
        for callback in self._dispatch["after_backward"]:
            callback()

    def after_step(self) -> None:
        for callback in self._dispatch["after_step"]:
            callback()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        hook_states = {}
        for key, hook in zip(_hook_state_keys(self._hooks), self._hooks):
            state = hook.state_dict()
            if state:
                hook_states[key] = state
        state = {"iteration": self.iter, "hooks": hook_states}
        if self.storage is not None:
            state["storage"] = self.storage.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.iter = state_dict["iteration"]
        self._storage_state = state_dict.get("storage")
        hooks_by_key = dict(zip(_hook_state_keys(self._hooks), self._hooks))
        for key, hook_state in state_dict.get("hooks", {}).items():
            hook = hooks_by_key.get(key)
            if hook is None:
                logger.warning(
                    f"Cannot find the hook {key!r} that the checkpoint has a state for; its state "
                    f"will not be restored. Registered hooks: {sorted(hooks_by_key)}"
                )
                continue
            hook.load_state_dict(hook_state)


class SimpleTrainer(TrainerBase):
    """One iteration = ``grad_accum_steps`` forward/backward passes and one optimizer step.

    The model takes a batch from ``data_loader`` and returns a dict of scalar losses; their sum
    is minimised. Loss values (and ``data_time``) are reduced across ranks and written to the
    event storage every ``gather_metric_period`` iterations and on the last iteration, with a
    single all_reduce of one stacked tensor; a non-finite total loss raises FloatingPointError
    on every rank at that point. ``clip_grad_norm`` clips the global gradient norm (logged as
    ``grad_norm``). With a DDP model, gradients are synchronised only on the last micro-step.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        grad_accum_steps: int = 1,
        clip_grad_norm: Optional[float] = None,
    ):
        super().__init__()
        if gather_metric_period < 1:
            raise ValueError(f"gather_metric_period must be >= 1, got {gather_metric_period}")
        if grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be a positive max-norm or None, got {clip_grad_norm}")
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        self.optimizer = optimizer
        self.gather_metric_period = gather_metric_period
        self.zero_grad_before_forward = zero_grad_before_forward
        self.grad_accum_steps = grad_accum_steps
        self.clip_grad_norm = clip_grad_norm
        self._world_size: Optional[int] = None

    @property
    def _data_loader_iter(self):
        # Created on first use so that building a trainer does not start loader workers.
        if self._data_loader_iter_obj is None:
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def reset_data_loader(self, data_loader_builder: Callable[[], Iterable]) -> None:
        """Replace the data source mid-training (e.g. after hard-negative mining): the current
        iterator is dropped first, so its loader workers shut down before the new loader starts
        its own; the next step iterates the new loader."""
        self._data_loader_iter_obj = None
        self.data_loader = data_loader_builder()

    def run_step(self) -> None:
        assert self.model.training, "SimpleTrainer requires the model in training mode (model.train())"
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        loss_dict, data_time = self._forward_backward()
        self.after_backward()
        grad_norm = self._clip_gradients()
        if fires_after(self.iter, self.gather_metric_period, self.max_iter):
            self._write_metrics(loss_dict, data_time, grad_norm)
        self._optimizer_step()

    def _forward_backward(self) -> Tuple[Dict[str, torch.Tensor], float]:
        """Run the micro-steps; returns the iteration's loss dict (mean over micro-steps) and the
        time spent waiting for data."""
        if self.grad_accum_steps == 1:  # the common case, without the accumulation bookkeeping
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time = time.perf_counter() - start
            loss_dict = self._compute_losses(data)
            losses = sum(loss_dict.values())
            if not self.zero_grad_before_forward:
                self.optimizer.zero_grad()
            self._backward(losses)
            return loss_dict, data_time
        steps = self.grad_accum_steps
        data_time = 0.0
        loss_dicts = []
        for micro_step in range(steps):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            is_last = micro_step == steps - 1
            sync_context = self.model.no_sync() if not is_last and hasattr(self.model, "no_sync") else nullcontext()
            with sync_context:
                loss_dict = self._compute_losses(data)
                losses = sum(loss_dict.values()) / steps
                if micro_step == 0 and not self.zero_grad_before_forward:
                    self.optimizer.zero_grad()
                self._backward(losses)
            loss_dicts.append(loss_dict)
        with torch.no_grad():
            return {k: sum(d[k] for d in loss_dicts) / steps for k in loss_dicts[0]}, data_time

    def _compute_losses(self, data: Any) -> Dict[str, torch.Tensor]:
        """The model's losses as a dict; a model that returns one loss tensor gets it as
        ``{"total_loss": loss}`` (as detectron2 does)."""
        loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            return {"total_loss": loss_dict}
        if not isinstance(loss_dict, dict):
            raise TypeError(
                "The model must return a dict of scalar loss tensors (or one loss tensor) in training "
                f"mode, got {type(loss_dict).__name__}"
            )
        return loss_dict

    def _backward(self, losses: torch.Tensor) -> None:
        losses.backward()

    def _clip_gradients(self) -> Optional[torch.Tensor]:
        if self.clip_grad_norm is None:
            return None
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        return torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)

    def _optimizer_step(self) -> None:
        self.optimizer.step()

    def _write_metrics(
        self, loss_dict: Dict[str, torch.Tensor], data_time: float, grad_norm: Optional[torch.Tensor]
    ) -> None:
        """Reduce the metrics across ranks in one collective, check them, put them in storage.

        Every rank receives the same sums, so a NaN on any rank makes every rank raise at the
        same iteration and none is left waiting in a later collective."""
        if self._world_size is None:  # asked once: it is five calls deep, and fixed while training
            self._world_size = comm.get_world_size()
        if self._world_size > 1:
            metrics = self._mean_over_ranks(loss_dict, data_time, grad_norm)
        else:
            metrics = {name: value.item() for name, value in loss_dict.items()}
            metrics["data_time"] = data_time
            if grad_norm is not None:
                metrics["grad_norm"] = float(grad_norm)
        # First, as it is the headline of the console line. (A model returning a bare loss tensor
        # has it as "total_loss" already: the sum is that value.)
        metrics = {"total_loss": sum([metrics[name] for name in loss_dict]), **metrics}
        if not math.isfinite(metrics["total_loss"]):
            raise FloatingPointError(
                f"Loss became infinite or NaN at iteration={self.iter}!\n"
                f"metrics (mean over {self._world_size} rank(s)) = {metrics}\n"
                f"loss_dict (rank {comm.get_rank()}) = { ({k: v.item() for k, v in loss_dict.items()}) }"
            )
        get_event_storage().put_scalars(cur_iter=self.iter, **metrics)

    def _mean_over_ranks(
        self, loss_dict: Dict[str, torch.Tensor], data_time: float, grad_norm: Optional[torch.Tensor]
    ) -> Dict[str, float]:
        """The losses, data_time and grad_norm averaged over ranks, by one all_reduce."""
        extras: Dict[str, Any] = {"data_time": data_time}  # floats or scalar tensors
        if grad_norm is not None:
            extras["grad_norm"] = grad_norm
        device = next(iter(loss_dict.values())).device
        with torch.no_grad():
            stacked = torch.stack(
                [v.float().reshape(()) for v in loss_dict.values()]
                + [torch.as_tensor(v, device=device, dtype=torch.float32) for v in extras.values()]
            )
        dist.all_reduce(stacked)
        return dict(zip(list(loss_dict) + list(extras), (stacked / self._world_size).tolist()))

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(state_dict["optimizer"])
