"""``DefaultTrainer``: a trainer with the standard training logic, built from a config.

The engine knows nothing about datasets or models: an application subclasses ``DefaultTrainer``
and overrides ``build_model``, ``build_train_loader``, ``build_test_loader`` and
``build_evaluator`` (see usvid/app/trainer.py).
"""

import logging
import os
import time
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..checkpoint import Checkpointer
from ..config import CfgNode, ConfigError
from ..solver import build_lr_scheduler, build_optimizer, get_clip_grad_norm
from ..utils import comm
from ..utils.events import EventWriter
from ..utils.logger import setup_logger
from . import hooks
from .amp_trainer import AMPTrainer, autocast_precision
from .defaults import (
    METRICS_WRITE_PERIOD,
    check_schedule_config,
    create_ddp_model,
    default_writers,
    verify_results,
)
from .preemption import PreemptionHook, TrainingPreempted
from .run_folder import RunFolderLock, archive_previous_run
from .train_loop import SimpleTrainer, TrainerBase

__all__ = ["DefaultTrainer"]

logger = logging.getLogger(__name__)


@contextmanager
def _inference_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode and no autograd for the block; the previous training mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class DefaultTrainer(TrainerBase):
    """A trainer with the standard training logic, built from a config:

    model, optimizer, LR scheduler and train loader from the ``build_*`` classmethods; DDP when
    the world size is > 1; ``SimpleTrainer`` (or ``AMPTrainer`` with SOLVER.AMP.ENABLED) doing
    the steps; a ``Checkpointer`` over OUTPUT_DIR holding the model, this trainer (iteration,
    optimizer, every stateful hook) and the train loader's sampler position; the hooks of
    :meth:`build_hooks`.
    """

    def __init__(self, cfg: CfgNode):
        super().__init__()
        if not logging.getLogger("usvid").isEnabledFor(logging.INFO):  # default_setup not called
            setup_logger(distributed_rank=comm.get_rank())
        check_schedule_config(cfg)
        cfg = self.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model)
        precision, why = autocast_precision(
            cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.PRECISION, next(model.parameters()).device.type
        )
        mode = "float32" if precision is None else f"{str(precision).replace('torch.', '')} autocast"
        logger.info(f"Training in {mode}: {why}")
        trainer_kwargs = {} if precision is None else {"precision": precision}
        self._trainer = (SimpleTrainer if precision is None else AMPTrainer)(
            model,
            data_loader,
            optimizer,
            grad_accum_steps=cfg.SOLVER.GRAD_ACCUM_STEPS,
            clip_grad_norm=get_clip_grad_norm(cfg),
            **trainer_kwargs,
        )
        # The inner trainer runs the step, but hooks are registered here: route its
        # after_backward callback to this trainer's hooks (a proxy avoids a reference cycle).
        outer = weakref.proxy(self)
        self._trainer.after_backward = lambda: outer.after_backward()
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        sampler = getattr(data_loader, "sampler", None)
        if hasattr(sampler, "state_dict") and hasattr(sampler, "load_state_dict"):
            self.checkpointer.add_checkpointable("train_sampler", sampler)
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())
        # Always present (not in build_hooks, which applications override): SIGTERM / SIGINT
        # end training with a checkpoint of the finished step, kept in the periodic
        # checkpointer's MAX_TO_KEEP rotation when build_hooks made one.
        periodic = next((h for h in self.hooks if isinstance(h, hooks.PeriodicCheckpointer)), None)
        self._preemption = PreemptionHook(self.checkpointer, periodic_checkpointer=periodic)
        self.register_hooks([self._preemption])
        # One live run per OUTPUT_DIR (main process; re-entrant after default_setup's lock).
        self._run_folder_lock = RunFolderLock(cfg.OUTPUT_DIR)
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            self._run_folder_lock.acquire()
            weakref.finalize(self, self._run_folder_lock.release)

    # The step is the inner trainer's; hooks reach its parts through these names, and assigning
    # one (e.g. a wrapped model, a new optimizer) replaces it in the inner trainer, which uses it.
    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    @model.setter
    def model(self, value: nn.Module) -> None:
        self._trainer.model = value

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @optimizer.setter
    def optimizer(self, value: torch.optim.Optimizer) -> None:
        self._trainer.optimizer = value

    @property
    def data_loader(self) -> Iterable:
        return self._trainer.data_loader

    @data_loader.setter
    def data_loader(self, value: Iterable) -> None:
        """A new loader is iterated from the next step on (see ``reset_data_loader``)."""
        self._trainer.reset_data_loader(lambda: value)

    def reset_data_loader(self, data_loader_builder: Callable[[], Iterable]) -> None:
        """See ``SimpleTrainer.reset_data_loader``."""
        self._trainer.reset_data_loader(data_loader_builder)

    def resume_or_load(self, resume: bool = True) -> None:
        """Continue from the last checkpoint in OUTPUT_DIR when ``resume`` and there is one;
        otherwise load MODEL.WEIGHTS (model weights only) and start at iteration 0."""
        self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            # The checkpoint was written after iteration self.iter finished.
            self.start_iter = self.iter + 1
        elif comm.is_main_process():
            archive_previous_run(self.cfg.OUTPUT_DIR)

    def build_hooks(self) -> List[Optional[hooks.HookBase]]:
        """IterationTimer, LRScheduler, EMA and PreciseBN (if enabled), PeriodicCheckpointer,
        EvalHook, and PeriodicWriter (main process) — the order detectron2 uses; priorities then fix the
        order that correctness depends on."""
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.DATALOADER.NUM_WORKERS = 0  # PreciseBN's loader needs no workers of its own

        def test_and_save_results():
            self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        precise_bn = None
        if cfg.TEST.PRECISE_BN.ENABLED and _has_batch_norm(self.model):
            precise_bn = hooks.PreciseBN(
                cfg.TEST.EVAL_PERIOD, self.model, self.build_train_loader(cfg), cfg.TEST.PRECISE_BN.NUM_ITER
            )
        ret: List[Optional[hooks.HookBase]] = [
            hooks.IterationTimer(),
            hooks.LRScheduler(),
            hooks.EMA(cfg.MODEL_EMA.DECAY) if cfg.MODEL_EMA.ENABLED else None,
            precise_bn,
            # On every rank: a save gathers the RNG state of every rank.
            hooks.PeriodicCheckpointer(
                self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, max_to_keep=cfg.SOLVER.MAX_TO_KEEP
            ),
            hooks.EvalHook(cfg.TEST.EVAL_PERIOD, test_and_save_results),
        ]
        if comm.is_main_process():
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=METRICS_WRITE_PERIOD))
        return ret

    def build_writers(self) -> List[EventWriter]:
        return default_writers(self.cfg.OUTPUT_DIR, self.max_iter)

    def train(self) -> Optional[Dict[str, Any]]:
        """Train from ``start_iter`` to MAX_ITER; returns the last evaluation results (None when
        nothing was evaluated). Returns at once when resumed from a finished run. Raises
        :class:`~usvid.engine.preemption.TrainingPreempted` (a SystemExit) when SIGTERM/SIGINT
        stopped training early, after saving a checkpoint of the last finished step."""
        if self.start_iter >= self.max_iter:
            # Resuming a finished run: running the loop would evaluate again and write a
            # duplicate line for iteration max_iter + 1.
            logger.info(
                f"Training already finished: the checkpoint is at iteration {self.start_iter - 1} "
                f"of SOLVER.MAX_ITER={self.max_iter}; nothing to do."
            )
            return getattr(self, "_last_eval_results", None)
        self._trainer.max_iter = self.max_iter  # it gathers metrics on the last iteration
        try:
            super().train(self.start_iter, self.max_iter)
        except TrainingPreempted as stopped:  # a signal after the last step: see PreemptionHook
            logger.warning(stopped.message)
            raise
        finally:
            self._run_folder_lock.release()
        stopped_after = self._preemption.stopped_after
        if stopped_after is not None and stopped_after < self.max_iter - 1:  # else it finished anyway
            error = self._preemption.preempted_error()
            logger.warning(error.message)
            raise error
        results = getattr(self, "_last_eval_results", None)
        if len(self.cfg.TEST.EXPECTED_RESULTS) and comm.is_main_process():
            if results is None:
                raise RuntimeError("TEST.EXPECTED_RESULTS is set but no evaluation ran during training")
            if not verify_results(self.cfg, results):
                raise RuntimeError("Evaluation results differ from TEST.EXPECTED_RESULTS (see the log)")
        return results

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.run_step()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["_trainer"] = self._trainer.state_dict()
        state["max_iter"] = self.max_iter  # so that a resume with another MAX_ITER can say so
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        # The optimizer first: loading it restores the saved learning rates, which the LR
        # scheduler (a hook state) then sets to the config's schedule at the saved iteration.
        self._trainer.load_state_dict(state_dict["_trainer"])
        super().load_state_dict(state_dict)
        saved_max_iter = state_dict.get("max_iter")
        if saved_max_iter is not None and saved_max_iter != self.max_iter:
            logger.warning(
                f"SOLVER.MAX_ITER changed since the checkpoint: {saved_max_iter} -> {self.max_iter}; "
                f"the resumed run trains until {self.max_iter}"
            )

    # ------------------------------------------------------ builders to override
    @classmethod
    def build_model(cls, cfg: CfgNode) -> nn.Module:
        """The model to train, on cfg.MODEL.DEVICE, returning a dict of losses in training."""
        raise _override_error(cls, "build_model")

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode) -> Iterable:
        """An endless iterable of batches; a ``.sampler`` with state_dict/load_state_dict makes
        its position part of every checkpoint."""
        raise _override_error(cls, "build_train_loader")

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str) -> Iterable:
        raise _override_error(cls, "build_test_loader")

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str):
        """An object with reset(), process(inputs, outputs) and evaluate() -> dict."""
        raise _override_error(cls, "build_evaluator")

    # ------------------------------------------------------------- evaluation
    @classmethod
    def load_trained_weights(cls, cfg: CfgNode, model: nn.Module, resume: bool = False) -> None:
        """Load into ``model`` the weights an evaluation of a trained run (``--eval-only``) must
        measure: the last checkpoint of OUTPUT_DIR with ``resume``, else MODEL.WEIGHTS.

        Every weight must fit the model, and some weights must be given: an initialisation would
        print meaningless numbers. With MODEL_EMA.ENABLED the checkpoint's EMA weights are used,
        the ones training's evaluations (EvalHook) and BestCheckpointer measured."""
        checkpointer = Checkpointer(model, save_dir=cfg.OUTPUT_DIR)
        if not cfg.MODEL.WEIGHTS and not (resume and checkpointer.has_checkpoint()):
            raise ConfigError(
                "Evaluating needs trained weights: set MODEL.WEIGHTS (e.g. MODEL.WEIGHTS "
                f"{os.path.join(cfg.OUTPUT_DIR, 'model_final.pth')}), or pass --resume to evaluate the "
                f"last checkpoint of OUTPUT_DIR={cfg.OUTPUT_DIR} (which has none)"
            )
        extra = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume, strict=True)
        if not cfg.MODEL_EMA.ENABLED:
            return
        ema_state = extra.get("trainer", {}).get("hooks", {}).get(hooks.EMA.__qualname__)
        if ema_state:
            comm.unwrap_model(model).load_state_dict(ema_state["weights"])
            logger.info("MODEL_EMA.ENABLED: evaluating the checkpoint's EMA weights, as training did")
        else:
            logger.warning(
                "MODEL_EMA.ENABLED, but the checkpoint holds no EMA weights: evaluating its weights as saved"
            )

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module, evaluators: Optional[Sequence[Any]] = None):
        """Evaluate ``model`` on every dataset of DATASETS.TEST; returns ``{dataset: results}``,
        or the results themselves when there is a single dataset."""
        if evaluators is not None and len(evaluators) != len(cfg.DATASETS.TEST):
            raise ValueError(
                f"{len(evaluators)} evaluators given for {len(cfg.DATASETS.TEST)} datasets in DATASETS.TEST"
            )
        results: Dict[str, Any] = OrderedDict()
        for index, dataset_name in enumerate(cfg.DATASETS.TEST):
            data_loader = cls.build_test_loader(cfg, dataset_name)
            if evaluators is not None:
                evaluator = evaluators[index]
            else:
                try:
                    evaluator = cls.build_evaluator(cfg, dataset_name)
                except NotImplementedError:
                    logger.warning(
                        f"No evaluator for {dataset_name}: override DefaultTrainer.build_evaluator "
                        "or pass evaluators to DefaultTrainer.test()."
                    )
                    results[dataset_name] = {}
                    continue
            results[dataset_name] = cls.inference(model, data_loader, evaluator)
            if comm.is_main_process():
                logger.info(f"Evaluation results for {dataset_name}: {results[dataset_name]}")
        if len(results) == 1:
            return next(iter(results.values()))
        return results

    @classmethod
    def inference(cls, model: nn.Module, data_loader: Iterable, evaluator) -> Dict[str, Any]:
        """Run ``model`` over ``data_loader`` in eval mode without gradients, feeding every
        batch and its outputs to ``evaluator``; the model's training mode is restored after.
        Applications override this (e.g. streaming video inference)."""
        evaluator.reset()
        start = time.perf_counter()
        num_batches = 0
        with _inference_mode(model):
            for inputs in data_loader:
                evaluator.process(inputs, model(inputs))
                num_batches += 1
        seconds = time.perf_counter() - start
        logger.info(f"Inference on {num_batches} batches took {seconds:.2f} s")
        results = evaluator.evaluate()
        return {} if results is None else results

    # The SOLVER keys holding a batch size, which auto_scale_workers scales with the world size;
    # an application whose loader reads another key (e.g. clips per batch) adds it.
    BATCH_SIZE_KEYS: Tuple[str, ...] = ("IMS_PER_BATCH",)

    @classmethod
    def auto_scale_workers(cls, cfg: CfgNode, num_workers: int) -> CfgNode:
        """Rescale batch size, LR and schedule linearly from SOLVER.REFERENCE_WORLD_SIZE to
        ``num_workers`` (detectron2's linear scaling rule), so a config tuned on N processes
        keeps the same per-process batch and the same number of epochs on M. Unchanged when
        REFERENCE_WORLD_SIZE is 0 or already ``num_workers``."""
        old_world_size = cfg.SOLVER.REFERENCE_WORLD_SIZE
        if old_world_size == 0 or old_world_size == num_workers:
            return cfg
        cfg = cfg.clone()
        frozen = cfg.is_frozen()
        cfg.defrost()
        scale = num_workers / old_world_size
        for key in cls.BATCH_SIZE_KEYS:
            if key in cfg.SOLVER:
                if cfg.SOLVER[key] % old_world_size != 0:
                    raise ValueError(
                        f"SOLVER.{key}={cfg.SOLVER[key]} is not divisible by "
                        f"SOLVER.REFERENCE_WORLD_SIZE={old_world_size}"
                    )
                cfg.SOLVER[key] = int(round(cfg.SOLVER[key] * scale))
        cfg.SOLVER.BASE_LR = cfg.SOLVER.BASE_LR * scale
        cfg.SOLVER.MAX_ITER = int(round(cfg.SOLVER.MAX_ITER / scale))
        cfg.SOLVER.WARMUP_ITERS = int(round(cfg.SOLVER.WARMUP_ITERS / scale))
        cfg.SOLVER.STEPS = tuple(int(round(s / scale)) for s in cfg.SOLVER.STEPS)
        cfg.TEST.EVAL_PERIOD = int(round(cfg.TEST.EVAL_PERIOD / scale))
        cfg.SOLVER.CHECKPOINT_PERIOD = int(round(cfg.SOLVER.CHECKPOINT_PERIOD / scale))
        cfg.SOLVER.REFERENCE_WORLD_SIZE = num_workers
        logger.info(
            f"Auto-scaling the config to world size {num_workers}: BASE_LR={cfg.SOLVER.BASE_LR}, "
            f"MAX_ITER={cfg.SOLVER.MAX_ITER}, WARMUP_ITERS={cfg.SOLVER.WARMUP_ITERS}, STEPS={cfg.SOLVER.STEPS}"
        )
        if frozen:
            cfg.freeze()
        return cfg


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _override_error(cls: type, method: str) -> NotImplementedError:
    return NotImplementedError(
        f"{cls.__name__}.{method} is not implemented: the engine knows no datasets or models. "
        f"Subclass DefaultTrainer and override {method} (see usvid/app/trainer.py)."
    )
