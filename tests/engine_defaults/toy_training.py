"""A toy application of DefaultTrainer for the engine tests: a small regression MLP (with
dropout, so the RNG state matters for exact resume), a loader driven by TrainingSampler (so the
sampler position matters) and an evaluator. Imported by tests in-process and by the scripts
that multi-process tests run."""

import contextlib
import logging

import torch
import torch.nn.functional as F
from torch import nn

from usvid.config import CfgNode, get_cfg
from usvid.data.samplers import TrainingSampler
from usvid.engine import DefaultTrainer
from usvid.utils import comm

NUM_SAMPLES = 64
NUM_FEATURES = 4


def toy_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(NUM_SAMPLES, NUM_FEATURES, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(NUM_SAMPLES, generator=generator)
    return x, y


class ToyModel(nn.Module):
    def __init__(self, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(NUM_FEATURES, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))

    def forward(self, batch):
        x, y = batch
        prediction = self.net(x).squeeze(1)
        if not self.training:
            return prediction
        return {"loss_mse": F.mse_loss(prediction, y), "loss_l1": 0.1 * F.l1_loss(prediction, y)}


class ToyLoader:
    """Endless batches of ``batch_size`` samples in TrainingSampler order (this rank's share)."""

    def __init__(self, batch_size: int, seed: int):
        self.sampler = TrainingSampler(NUM_SAMPLES, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.x, self.y = toy_data()

    def __iter__(self):
        indices = iter(self.sampler)
        while True:
            batch = torch.tensor([next(indices) for _ in range(self.batch_size)])
            yield self.x[batch], self.y[batch]


class ToyEvaluator:
    def reset(self):
        self.squared_errors = []

    def process(self, inputs, outputs):
        self.squared_errors.append((outputs - inputs[1]) ** 2)

    def evaluate(self):
        return {"toy": {"mse": torch.cat(self.squared_errors).mean().item()}}


class ToyTrainer(DefaultTrainer):
    @classmethod
    def build_model(cls, cfg):
        torch.manual_seed(0)  # the same initial weights in every run and on every rank
        return ToyModel(cfg.TOY.DROPOUT)

    @classmethod
    def build_train_loader(cls, cfg):
        return ToyLoader(cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(), seed=cfg.TOY.SAMPLER_SEED)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        x, y = toy_data()
        return [(x[i : i + 16], y[i : i + 16]) for i in range(0, NUM_SAMPLES, 16)]

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        return ToyEvaluator()


def toy_cfg(output_dir: str, *overrides) -> CfgNode:
    """The toy run's config; ``overrides`` are KEY VALUE pairs as on the command line."""
    cfg = get_cfg()
    cfg.TOY = CfgNode()
    cfg.TOY.DROPOUT = 0.2
    cfg.TOY.SAMPLER_SEED = 7
    cfg.MODEL.DEVICE = "cpu"
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.SEED = 0
    cfg.DATASETS.TEST = ("toy_test",)
    cfg.SOLVER.IMS_PER_BATCH = 8
    cfg.SOLVER.BASE_LR = 0.05
    cfg.SOLVER.MAX_ITER = 40
    cfg.SOLVER.STEPS = (25,)
    cfg.SOLVER.WARMUP_ITERS = 5
    cfg.SOLVER.CHECKPOINT_PERIOD = 20
    cfg.TEST.EVAL_PERIOD = 20
    cfg.merge_from_list([str(item) for item in overrides])
    return cfg


@contextlib.contextmanager
def preserved_usvid_logger():
    """DefaultTrainer / default_setup configure the "usvid" logger (handlers, no propagation);
    restore it afterwards so later tests in the same worker still see log records (caplog)."""
    usvid_logger = logging.getLogger("usvid")
    handlers, propagate, level = list(usvid_logger.handlers), usvid_logger.propagate, usvid_logger.level
    try:
        yield
    finally:
        usvid_logger.handlers[:] = handlers
        usvid_logger.propagate, usvid_logger.level = propagate, level
