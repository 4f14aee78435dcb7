"""The standard training hooks (detectron2 names and firing rules).

Periodic hooks fire after iteration ``i`` when ``(i + 1) % period == 0`` and on the last
iteration. Priorities (lower runs first; equal ones keep registration order) fix the order that
correctness depends on, whatever order the hooks were registered in:

* ``EMA`` (20) updates its weights right after the optimizer step, before anything evaluates
  or saves them;
* the default (50): timing, LR scheduling, PreciseBN, evaluation, profiling;
* ``BestCheckpointer`` and ``EarlyStopping`` (60) act on evaluation results of this step;
* ``PeriodicWriter`` (80) writes everything the step and the hooks above produced;
* ``PeriodicCheckpointer`` (90) saves last, so a checkpoint holds every hook's state after
  this step (best metric, early-stopping counters, EMA weights) and a resumed run continues
  exactly; metrics of the saved iteration are already written, so none are lost or duplicated.
"""

import gc
import itertools
import logging
import math
import os
import time
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import nn

from torch.optim.lr_scheduler import LRScheduler as TorchLRScheduler

from usvid.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from usvid.solver import LRMultiplier
from usvid.utils import comm
from usvid.utils.events import EventStorage, EventWriter

from .train_loop import HookBase

__all__ = [
    "CallbackHook",
    "IterationTimer",
    "PeriodicWriter",
    "PeriodicCheckpointer",
    "BestCheckpointer",
    "LRScheduler",
    "EvalHook",
    "PreciseBN",
    "update_bn_stats",
    "flatten_results_dict",
    "TorchProfiler",
    "EarlyStopping",
    "EMA",
]

logger = logging.getLogger(__name__)


def _is_periodic_iteration(trainer, period: int) -> bool:
    """True after the iterations where a hook with this period fires (and the last one)."""
    next_iter = trainer.iter + 1
    return (period > 0 and next_iter % period == 0) or next_iter == trainer.max_iter


def last_scheduled_write(iteration: int, period: int) -> int:
    """The last iteration ``<= iteration`` after which a hook with ``period`` fires in an
    uninterrupted run (``(i + 1) % period == 0``); -1 if none."""
    return (iteration + 1) // period * period - 1


def _check_mode(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' (higher is better) or 'min' (lower is better), got {mode!r}")
    return mode


def _is_improvement(value: float, best: Optional[float], mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


class CallbackHook(HookBase):
    """A hook made of plain functions, each called with the trainer."""

    def __init__(
        self,
        *,
        before_train: Optional[Callable] = None,
        after_train: Optional[Callable] = None,
        before_step: Optional[Callable] = None,
        after_backward: Optional[Callable] = None,
        after_step: Optional[Callable] = None,
    ):
        self._before_train = before_train
        self._after_train = after_train
        self._before_step = before_step
        self._after_backward = after_backward
        self._after_step = after_step

    def before_train(self):
        if self._before_train:
            self._before_train(self.trainer)

    def after_train(self):
        if self._after_train:
            self._after_train(self.trainer)
        # The functions are often closures over the trainer: drop them to break the cycle.
        self._before_train = self._after_train = self._before_step = None
        self._after_backward = self._after_step = None

    def before_step(self):
        if self._before_step:
            self._before_step(self.trainer)

    def after_backward(self):
        if self._after_backward:
            self._after_backward(self.trainer)

    def after_step(self):
        if self._after_step:
            self._after_step(self.trainer)


def _format_seconds(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) if seconds < 86400 else f"{seconds / 3600:.1f} h"


class IterationTimer(HookBase):
    """Put each step's duration as ``time`` and log the overall speed at the end.

    The first ``warmup_iter`` steps (allocator warm-up, lazy initialisation) are neither logged
    nor counted in the average. ``time`` covers the step and the hooks that run between this
    hook's ``before_step`` and ``after_step``; the final report separates time spent in hooks.
    """

    def __init__(self, warmup_iter: int = 3):
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._train_start = 0.0
        self._total_step_time = 0.0  # time inside (before_step, after_step) after warm-up
        self._timed_steps = 0

    def before_train(self):
        self._train_start = time.perf_counter()
        self._total_step_time = 0.0
        self._timed_steps = 0
        # A resumed run starts with the step times restored from the checkpoint, but its first
        # warmup_iter steps are untimed: the restored latest time must not be written as new.
        self.trainer.storage.discard_latest("time")

    def before_step(self):
        self._step_start = time.perf_counter()

    def after_step(self):
        now = time.perf_counter()
        iterations_done = self.trainer.iter - self.trainer.start_iter + 1
        if iterations_done > self._warmup_iter:
            step_time = now - self._step_start
            self._total_step_time += step_time
            self._timed_steps += 1
            self.trainer.storage.put_scalar("time", step_time)
        else:
            self._train_start = now  # the total starts after the warm-up

    def after_train(self):
        total = time.perf_counter() - self._train_start
        if self._timed_steps > 0:
            logger.info(
                f"Overall training speed: {self._timed_steps} iterations in "
                f"{_format_seconds(self._total_step_time)} ({self._total_step_time / self._timed_steps:.4f} s / it)"
            )
        logger.info(
            f"Total training time: {_format_seconds(total)} "
            f"({_format_seconds(max(total - self._total_step_time, 0.0))} on hooks)"
        )

    @property
    def timed_steps(self) -> int:
        """Steps measured after the warm-up (the ones the average covers)."""
        return self._timed_steps


class PeriodicWriter(HookBase):
    """Call every writer's ``write()`` periodically, and once more (then ``close()``) at the end
    so values put in ``after_train`` (e.g. the final evaluation) are written too.

    In a run resumed at iteration ``s > 0`` each writer is first told (``resume_after``) the
    last iteration this hook wrote before ``s`` in an uninterrupted run: what an interrupted
    run wrote after that (the flush of a stopped run, lines beyond a fallback checkpoint) is
    written again on the uninterrupted schedule, so the output equals the uninterrupted run's."""

    priority = 80

    def __init__(self, writers: Iterable[EventWriter], period: int = 20):
        self._writers = list(writers)
        for writer in self._writers:
            if not isinstance(writer, EventWriter):
                raise TypeError(f"PeriodicWriter needs EventWriter instances, got {type(writer).__name__}")
        if period < 1:
            raise ValueError(f"PeriodicWriter period must be >= 1 iteration, got {period}")
        self._period = period

    def before_train(self):
        start_iter = self.trainer.start_iter
        if start_iter > 0:
            for writer in self._writers:
                writer.resume_after(last_scheduled_write(start_iter - 1, self._period))

    def after_step(self):
        # _is_periodic_iteration inlined: this runs on every step, and a function call there
        # costs about a microsecond once the step has evicted the interpreter from the caches.
        next_iter = self.trainer.iter + 1
        if next_iter % self._period == 0 or next_iter == self.trainer.max_iter:
            for writer in self._writers:
                writer.write()

    def after_train(self):
        for writer in self._writers:
            writer.write()
            writer.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """``usvid.checkpoint.PeriodicCheckpointer`` as a hook: saves after the periodic iterations
    and ``model_final`` after the last, or after the step a hook ended training at. Runs last
    (see the module docstring); register it on every rank, because saving gathers the RNG state
    of every rank."""

    priority = 90

    def before_train(self):
        # The trainer's max_iter wins over the constructor's (detectron2's rule).
        self.max_iter = self.trainer.max_iter

    def after_step(self):
        iteration = self.trainer.iter
        self.step(iteration)
        if self.trainer.should_stop and iteration < self.max_iter - 1:
            # A hook that runs before this one (e.g. EarlyStopping) ended training after this
            # step: its weights are the run's result, saved where the last iteration saves them.
            # (A preempted run is stopped after this hook, and saves a checkpoint to resume from.)
            logger.info(f"Training ends early after iteration {iteration}; saving {self.file_prefix}_final")
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=iteration)


class BestCheckpointer(HookBase):
    """Save ``{file_prefix}.pth`` whenever the evaluation metric ``val_metric`` improves.

    Checks after the evaluations of an ``EvalHook`` with the same ``eval_period``, including
    the final one in ``after_train``. Non-finite values never count as best."""

    priority = 60

    def __init__(self, eval_period: int, checkpointer, val_metric: str, mode: str = "max", file_prefix: str = "model_best"):
        self._period = eval_period
        self._checkpointer = checkpointer
        self._val_metric = val_metric
        self._mode = _check_mode(mode)
        self._file_prefix = file_prefix
        self.best_metric: Optional[float] = None
        self.best_iter: Optional[int] = None

    def _best_checking(self):
        # EvalHook gives every rank the same results, so every rank decides (and saves) alike.
        latest = self.trainer.storage.latest().get(self._val_metric)
        if latest is None:
            logger.warning(
                f"BestCheckpointer: the metric {self._val_metric!r} was not found in the event storage; "
                "no best checkpoint is saved. Check the name against the evaluation results."
            )
            return
        value, metric_iter = latest
        if _is_improvement(value, self.best_metric, self._mode):
            previous = self.best_metric
            self.best_metric, self.best_iter = value, metric_iter
            self._checkpointer.save(self._file_prefix, iteration=metric_iter)
            logger.info(
                f"Saved best model ({self._val_metric} = {value:.5g} at iteration {metric_iter}, "
                f"previous best {previous})"
            )
        else:
            logger.info(
                f"Not saving as latest eval score for {self._val_metric} is {value:.5g}, not better "
                f"than best score {self.best_metric} @ iteration {self.best_iter}."
            )

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self._period > 0 and next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            self._best_checking()

    def after_train(self):
        if self.trainer.iter >= self.trainer.max_iter:  # training finished: the final evaluation
            self._best_checking()

    def state_dict(self):
        return {"best_metric": self.best_metric, "best_iter": self.best_iter}

    def load_state_dict(self, state_dict):
        self.best_metric = state_dict["best_metric"]
        self.best_iter = state_dict["best_iter"]


class LRScheduler(HookBase):
    """Put the learning rate of the largest parameter group as ``lr``, THEN step the scheduler,
    so ``lr`` at iteration i is the rate the optimizer used in step i.

    ``optimizer`` / ``scheduler`` default to the trainer's ``optimizer`` / ``scheduler``. The
    scheduler is a ``torch`` LR scheduler, or a param scheduler (a callable of training
    progress in [0, 1) returning an LR multiplier, see ``usvid.solver.param_scheduler``) that
    is wrapped in an ``LRMultiplier`` over the trainer's ``max_iter`` when training starts. That
    wrapper starts at the trainer's iteration, so its state needs no checkpoint."""

    def __init__(self, optimizer: Optional[torch.optim.Optimizer] = None, scheduler=None):
        self._optimizer = optimizer
        self._scheduler = scheduler
        self._lr_multiplier: Optional[LRMultiplier] = None  # runs a param scheduler
        self._group_index = 0

    @property
    def scheduler(self):
        return self._scheduler if self._scheduler is not None else self.trainer.scheduler

    def before_train(self):
        if self._optimizer is None:
            self._optimizer = self.trainer.optimizer
        groups = self._optimizer.param_groups
        self._group_index = max(range(len(groups)), key=lambda i: len(groups[i]["params"]))
        self._scheduler = self.scheduler  # resolved once, not on every step
        if not isinstance(self._scheduler, TorchLRScheduler):
            self._lr_multiplier = LRMultiplier(
                self._optimizer, self._scheduler, self.trainer.max_iter, last_iter=self.trainer.iter - 1
            )

    def after_step(self):
        lr = self._optimizer.param_groups[self._group_index]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        (self._lr_multiplier or self._scheduler).step()

    def state_dict(self):
        scheduler = self.scheduler
        return scheduler.state_dict() if isinstance(scheduler, TorchLRScheduler) else {}

    def load_state_dict(self, state_dict):
        scheduler = self.scheduler
        if isinstance(scheduler, TorchLRScheduler):
            scheduler.load_state_dict(state_dict)


def flatten_results_dict(results: Mapping, prefix: str = "") -> Dict[str, float]:
    """``{"bbox": {"AP": 1}}`` -> ``{"bbox/AP": 1.0}``, the scalar names evaluation results get
    in the event storage and metrics.json; values must be numbers."""
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_results_dict(value, name + "/"))
            continue
        try:
            flat[name] = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"The evaluation result {name!r} = {value!r} is not a number; an evaluation "
                "(EvalHook's eval_function) must return a (nested) dict of numbers."
            ) from e
    return flat


class EvalHook(HookBase):
    """Run ``eval_function()`` every ``eval_period`` iterations and after training.

    Results (a nested dict of numbers) are flattened to ``"task/metric"`` names and put in the
    storage unsmoothed. Rank 0's results are shared with every rank, so hooks that act on them
    (BestCheckpointer, EarlyStopping) decide the same everywhere. When an ``EMA`` hook is
    registered, evaluation runs with the EMA weights swapped into the model.
    The final evaluation runs in ``after_train`` only if training finished."""

    def __init__(self, eval_period: int, eval_function: Callable[[], Optional[Mapping]], eval_after_train: bool = True):
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self):
        ema = next((h for h in self.trainer.hooks if isinstance(h, EMA)), None)
        with ema.apply_to_model() if ema is not None else nullcontext():
            results = self._func()
        # Rank 0's results on every rank: hooks acting on them must decide alike on all ranks
        # (rank 0 may be the only one with results). This also lines up the ranks again.
        results = comm.all_gather(results)[0]
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(f"EvalHook: eval_function must return a dict, got {type(results).__name__}")
            self.trainer.storage.put_scalars(**flatten_results_dict(results), smoothing_hint=False)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        # The evaluation of the last iteration happens in after_train.
        if self._period > 0 and next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            self._do_eval()

    def after_train(self):
        # iter == max_iter only when training finished; no evaluation after a failure (which
        # leaves iter at the failing iteration, max_iter - 1 if the last step failed).
        if self._eval_after_train and self.trainer.iter >= self.trainer.max_iter:
            self._do_eval()
        # eval_function is often a closure over the trainer: drop it to break the cycle, and
        # collect now so the model, data and predictions it held are freed before the process
        # moves on (e.g. to a test run). Not after periodic evaluations: a full collection
        # costs ~0.3 s and reference counting already frees what they leave behind.
        self._func = None
        gc.collect()


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
        if not self._disabled and _is_periodic_iteration(self.trainer, self._period):
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


class TorchProfiler(HookBase):
    """Profile the steps for which ``enable_predicate(trainer)`` is true with
    ``torch.profiler`` and write a chrome trace ``profiler-trace-iter{i}.json`` per step."""

    def __init__(self, enable_predicate: Callable, output_dir: str, *, activities: Optional[Iterable] = None):
        self._enable_predicate = enable_predicate
        self._output_dir = output_dir
        self._activities = list(activities) if activities is not None else None
        self._profiler = None

    def before_step(self):
        if self._enable_predicate(self.trainer):
            self._profiler = torch.profiler.profile(activities=self._activities, record_shapes=True)
            self._profiler.__enter__()
        else:
            self._profiler = None

    def after_step(self):
        if self._profiler is None:
            return
        self._profiler.__exit__(None, None, None)
        os.makedirs(self._output_dir, exist_ok=True)
        out_file = os.path.join(self._output_dir, f"profiler-trace-iter{self.trainer.iter}.json")
        self._profiler.export_chrome_trace(out_file)
        self._profiler = None


class EarlyStopping(HookBase):
    """Stop training when ``metric`` has not improved for ``patience`` evaluations in a row.

    Reads each new value of ``metric`` from the storage after the step that produced it (an
    ``EvalHook`` evaluation) and sets ``trainer.should_stop``. The best value and the count of
    evaluations without improvement (and which evaluation was counted last) are checkpointed,
    so a resumed run stops exactly where the uninterrupted run would."""

    priority = 60

    def __init__(self, metric: str, mode: str = "max", patience: int = 5):
        if patience < 1:
            raise ValueError(f"EarlyStopping patience must be >= 1 evaluation, got {patience}")
        self._metric = metric
        self._mode = _check_mode(mode)
        self._patience = patience
        self.best: Optional[float] = None
        self.num_bad_evals = 0
        self._last_seen_iter: Optional[int] = None

    def after_step(self):
        latest = self.trainer.storage.latest().get(self._metric)
        if latest is None or latest[1] == self._last_seen_iter:
            return
        value, self._last_seen_iter = latest
        if _is_improvement(value, self.best, self._mode):
            self.best, self.num_bad_evals = value, 0
            return
        self.num_bad_evals += 1
        if self.num_bad_evals >= self._patience:
            logger.info(
                f"Early stopping: {self._metric} has not improved on {self.best} for "
                f"{self.num_bad_evals} evaluations (patience {self._patience})."
            )
            self.trainer.should_stop = True

    def state_dict(self):
        # The last evaluation counted is kept too: the checkpoint also restores the storage
        # that holds it, and a resumed run must not count it a second time.
        return {"best": self.best, "num_bad_evals": self.num_bad_evals, "last_seen_iter": self._last_seen_iter}

    def load_state_dict(self, state_dict):
        self.best = state_dict["best"]
        self.num_bad_evals = state_dict["num_bad_evals"]
        self._last_seen_iter = state_dict.get("last_seen_iter")


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
