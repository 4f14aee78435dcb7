"""Toy regression problem shared by the engine tests: a model that returns a dict of losses
and an endless, seeded stream of batches, so every test trains something real in milliseconds."""

import logging

import pytest
import torch
from torch import nn

from usvid.engine import SimpleTrainer

TRUE_WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


class ToyRegressor(nn.Module):
    """Linear regression returning two losses (so per-loss reporting is exercised)."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.linear = nn.Linear(4, 1)

    def forward(self, batch):
        x, y = batch
        pred = self.linear(x)
        return {"loss_mse": nn.functional.mse_loss(pred, y), "loss_l1": 0.1 * nn.functional.l1_loss(pred, y)}


class ScriptedLossModel(nn.Module):
    """A linear model whose losses for its n-th forward call (from 1) are ``losses(n, loss)`` (loss:
    the mean squared output on the batch's first element), so a test makes a chosen iteration fail
    or go NaN."""

    def __init__(self, losses, in_features=4):
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.losses = losses
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        return self.losses(self.calls, self.linear(batch[0]).pow(2).mean())


def toy_batches(batch_size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    while True:
        x = torch.randn(batch_size, 4, generator=generator)
        yield x, x @ TRUE_WEIGHTS


@pytest.fixture(name="toy_batches")
def toy_batches_fixture():
    return toy_batches


@pytest.fixture
def scripted_loss_model():
    """``scripted_loss_model(losses, in_features=4)`` -> a ScriptedLossModel."""
    return ScriptedLossModel


@pytest.fixture(name="toy_model")
def toy_model_fixture():
    return ToyRegressor()


@pytest.fixture
def make_trainer():
    """``make_trainer(**SimpleTrainer kwargs)`` -> a SimpleTrainer on the toy problem (SGD 0.05)."""

    def build(model=None, data=None, lr=0.05, **kwargs):
        model = model if model is not None else ToyRegressor()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        return SimpleTrainer(model, data if data is not None else toy_batches(), optimizer, **kwargs)

    return build


@pytest.fixture
def usvid_logs(caplog):
    """caplog that also sees the "usvid" loggers when setup_logger() turned propagation off."""
    usvid_logger = logging.getLogger("usvid")
    propagate = usvid_logger.propagate
    usvid_logger.propagate = True
    caplog.set_level(logging.INFO, logger="usvid")
    yield caplog
    usvid_logger.propagate = propagate
