"""Per-iteration overhead of usvid's SimpleTrainer + default hooks vs a plain PyTorch loop,
PyTorch Lightning and PyTorch-Ignite, on a tiny model whose step takes a fraction of a ms.

Every framework runs the same step (forward, loss, zero_grad, backward, SGD step, LR scheduler
step) on the same pre-made batches; usvid also reduces, NaN-checks and stores the losses every
iteration (``gather_metric_period=1``, the default; a second row uses 20) and runs its default
hooks (IterationTimer, LRScheduler, PeriodicWriter with a JSON writer and the console printer
every 20 iterations, PeriodicCheckpointer with a long period). The peers run twice: once only
training (they read no loss values and log nothing), and once ("same work") doing what usvid's
default hooks do with their own handlers and callbacks (see ``run_ignite_same_work`` and
``run_lightning_same_work``), which is the like-for-like comparison. The runs are interleaved
over several rounds, so load changes on a shared machine hit all frameworks alike, and the
median over rounds is reported.

Timing: the data iterator stamps ``perf_counter`` at every batch fetch, so a fetch-to-fetch
interval is one whole iteration of any framework (setup, the ``--warmup`` iterations and the
final save are outside the window). On a loaded machine some intervals contain a preemption
(the process waiting for a core for milliseconds); the "robust" figure is the mean interval
after dropping those longer than 4x the run's median interval, which keeps periodic costs such
as the writers (well below 4x) but not the scheduler's noise. The raw mean is reported too.

    .venv/bin/python benchmarks/engine_overhead.py --iters 600 --warmup 100 --rounds 11 [--breakdown]

``--breakdown`` adds usvid rows with its parts switched on one at a time (the loop alone, then
per-step metrics, the timer, the LR hook, the checkpointer; the default row adds the writers).

Lightning and Ignite come from the ``bench`` extra (``pip install "lightning>=2.2"
"pytorch-ignite>=0.5"``); a framework that cannot be imported or run is skipped with a message.
"""

import argparse
import copy
import functools
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

IN_FEATURES, HIDDEN, BATCH_SIZE, LR = 32, 16, 16, 0.01


class TinyRegressor(nn.Module):
    """Returns a dict of losses in training, as usvid models do; ``predict`` is the bare net."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(IN_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))

    def forward(self, batch):
        x, y = batch
        return {"loss_mse": nn.functional.mse_loss(self.net(x), y)}


class TimedBatches:
    """Yields ``n`` batches from a small pool, stamping ``perf_counter`` at every fetch."""

    SPIKE_FACTOR = 4.0  # intervals this many times the median are preemptions, not work

    def __init__(self, pool: List[Tuple[torch.Tensor, torch.Tensor]], n: int, warmup: int):
        self.pool, self.n, self.warmup = pool, n, warmup
        self.stamps: List[float] = []

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i in range(self.n):
            self.stamps.append(time.perf_counter())
            yield self.pool[i % len(self.pool)]

    def per_iteration_ms(self) -> Tuple[float, float, float]:
        """(robust mean, raw mean, share of dropped intervals) over the steady-state window."""
        window = self.stamps[self.warmup :]
        intervals = [(b - a) * 1e3 for a, b in zip(window, window[1:])]
        limit = self.SPIKE_FACTOR * statistics.median(intervals)
        kept = [t for t in intervals if t <= limit]
        return statistics.fmean(kept), statistics.fmean(intervals), 1.0 - len(kept) / len(intervals)


def make_optimizer(model: nn.Module):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0 / (1.0 + 1e-4 * it))
    return optimizer, scheduler


def run_plain(model: nn.Module, data: TimedBatches, workdir: str) -> None:
    optimizer, scheduler = make_optimizer(model)
    model.train()
    for i, batch in enumerate(data):
        loss_dict = model(batch)
        losses = sum(loss_dict.values())
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        scheduler.step()
        if (i + 1) % 20 == 0:
            losses.item()  # a plain loop still looks at its loss now and then


DEFAULT_HOOKS = ("timer", "lr", "checkpointer", "writers")


def run_usvid(
    model: nn.Module, data: TimedBatches, workdir: str, gather_metric_period: int = 1, hooks=DEFAULT_HOOKS
) -> None:
    from usvid.checkpoint import Checkpointer
    from usvid.engine import (
        CallbackHook,
        IterationTimer,
        LRScheduler,
        PeriodicCheckpointer,
        PeriodicWriter,
        SimpleTrainer,
    )
    from usvid.utils.events import CommonMetricPrinter, JSONWriter

    optimizer, scheduler = make_optimizer(model)
    trainer = SimpleTrainer(model, data, optimizer, gather_metric_period=gather_metric_period)
    checkpointer = Checkpointer(model, workdir, optimizer=optimizer)
    available = {
        "timer": lambda: IterationTimer(),
        "lr": lambda: LRScheduler(scheduler=scheduler),
        # Without the LRScheduler hook the scheduler still steps, so every row does the same work.
        "no lr": lambda: CallbackHook(after_step=lambda _: scheduler.step()),
        "checkpointer": lambda: PeriodicCheckpointer(checkpointer, period=100_000),
        "writers": lambda: PeriodicWriter(
            [CommonMetricPrinter(data.n), JSONWriter(os.path.join(workdir, "metrics.json"))], period=20
        ),
    }
    if "lr" not in hooks:
        hooks = (*hooks, "no lr")
    trainer.register_hooks([available[name]() for name in hooks])
    trainer.train(0, data.n)


def fit_lightning(model: nn.Module, data: TimedBatches, workdir: str, log_loss: bool, **trainer_options) -> None:
    """One pass of Lightning over ``data`` on the CPU with the shared step, optimizer and LR
    schedule; ``log_loss`` logs the loss every step (``self.log``), ``trainer_options`` are each
    runner's logger, checkpointing and callbacks."""
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            loss = sum(self.model(batch).values())
            if log_loss:
                self.log("loss", loss, on_step=True, on_epoch=False)
            return loss

        def configure_optimizers(self):
            optimizer, scheduler = make_optimizer(self.model)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    trainer = L.Trainer(
        max_steps=data.n,
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        default_root_dir=workdir,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_options,
    )
    trainer.fit(Module(), train_dataloaders=data)


def run_lightning(model: nn.Module, data: TimedBatches, workdir: str) -> None:
    fit_lightning(model, data, workdir, log_loss=False, logger=False, enable_checkpointing=False)


def make_ignite_engine(model: nn.Module, read_loss: bool):
    """An Ignite ``Engine`` running the shared step (its output is the loss value when
    ``read_loss``, else the loss tensor), with its optimizer and LR scheduler."""
    from ignite.engine import Engine

    optimizer, scheduler = make_optimizer(model)
    model.train()

    def update(engine, batch):
        losses = sum(model(batch).values())
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        return losses.item() if read_loss else losses

    return Engine(update), optimizer, scheduler


def run_ignite(model: nn.Module, data: TimedBatches, workdir: str) -> None:
    from ignite.engine import Events

    engine, _, scheduler = make_ignite_engine(model, read_loss=False)
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda _: scheduler.step())
    engine.run(data, max_epochs=1)


def run_ignite_same_work(model: nn.Module, data: TimedBatches, workdir: str) -> None:
    """Ignite doing the work of usvid's default hooks with its own handlers: the loss read and
    NaN-checked every step (``TerminateOnNan``), a running loss average, a step timer, the
    learning rate recorded every step, a checkpoint handler with a long period, and every 20
    steps a JSON line and a console line."""
    import json

    from ignite.engine import Events
    from ignite.handlers import Checkpoint, DiskSaver, TerminateOnNan, Timer
    from ignite.metrics import RunningAverage

    engine, optimizer, scheduler = make_ignite_engine(model, read_loss=True)
    engine.add_event_handler(Events.ITERATION_COMPLETED, TerminateOnNan())
    RunningAverage(output_transform=lambda loss: loss).attach(engine, "loss")
    timer = Timer(average=True)
    timer.attach(
        engine,
        start=Events.STARTED,
        resume=Events.ITERATION_STARTED,
        pause=Events.ITERATION_COMPLETED,
        step=Events.ITERATION_COMPLETED,
    )
    lrs: List[float] = []

    def step_scheduler(_):
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()

    engine.add_event_handler(Events.ITERATION_COMPLETED, step_scheduler)
    checkpoint = Checkpoint({"model": model, "optimizer": optimizer}, DiskSaver(workdir, require_empty=False))
    engine.add_event_handler(Events.ITERATION_COMPLETED(every=100_000), checkpoint)
    console = logging.getLogger("engine_overhead.ignite")

    with open(os.path.join(workdir, "metrics.json"), "a") as metrics_file:

        def write(engine):
            line = {
                "iteration": engine.state.iteration,
                "loss": engine.state.metrics["loss"],
                "time": timer.value(),
                "lr": lrs[-1],
            }
            metrics_file.write(json.dumps(line) + "\n")
            metrics_file.flush()
            console.info(
                f"iter: {line['iteration']}  loss: {line['loss']:.4g}  time: {line['time']:.4f}  lr: {line['lr']:.5g}"
            )

        engine.add_event_handler(Events.ITERATION_COMPLETED(every=20), write)
        engine.run(data, max_epochs=1)


def run_lightning_same_work(model: nn.Module, data: TimedBatches, workdir: str) -> None:
    """Lightning doing the work of usvid's default hooks with its own features, as far as it
    has them: the loss logged every step (``self.log``), the learning rate monitored every step,
    a checkpoint callback with a long period, and a CSV logger written every 20 steps (no NaN
    check and no step timer: Lightning has no per-step ones)."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    fit_lightning(
        model,
        data,
        workdir,
        log_loss=True,
        logger=CSVLogger(workdir, flush_logs_every_n_steps=20),
        log_every_n_steps=20,
        callbacks=[
            LearningRateMonitor(logging_interval="step"),
            ModelCheckpoint(dirpath=workdir, every_n_train_steps=100_000),
        ],
    )


RUNNERS: Dict[str, Callable] = {
    "plain PyTorch loop": run_plain,
    "usvid SimpleTrainer + default hooks": run_usvid,
    # Losses reduced, NaN-checked and logged every 20 iterations instead of every one.
    "usvid, gather_metric_period=20": functools.partial(run_usvid, gather_metric_period=20),
    "PyTorch Lightning": run_lightning,
    "PyTorch-Ignite": run_ignite,
    # The peers again, each doing the work of usvid's default hooks (see the runners).
    "PyTorch Lightning, same work": run_lightning_same_work,
    "PyTorch-Ignite, same work": run_ignite_same_work,
}


# --breakdown: usvid with its parts added one at a time (each row includes the ones above it).
BREAKDOWN: Dict[str, Callable] = {
    "usvid loop only (metrics at the end)": functools.partial(run_usvid, gather_metric_period=10**9, hooks=()),
    "+ per-step metrics (gather period 1)": functools.partial(run_usvid, hooks=()),
    "+ IterationTimer": functools.partial(run_usvid, hooks=("timer",)),
    "+ LRScheduler hook": functools.partial(run_usvid, hooks=("timer", "lr")),
    "+ PeriodicCheckpointer": functools.partial(run_usvid, hooks=("timer", "lr", "checkpointer")),
}


def quiet_frameworks() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "ignite"):
        logging.getLogger(name).setLevel(logging.ERROR)


def available_runners() -> Dict[str, Callable]:
    """Drop the frameworks that cannot be imported, saying why."""
    runners = dict(RUNNERS)
    for framework, module in (("PyTorch Lightning", "lightning"), ("PyTorch-Ignite", "ignite")):
        try:
            __import__(module)
        except Exception as e:  # any import failure means: cannot compare with it here
            print(
                f"SKIP {framework}: cannot import {module!r} ({type(e).__name__}: {e}); "
                f'install the bench extra: .venv/bin/pip install "lightning>=2.2" "pytorch-ignite>=0.5" torch==2.13.0'
            )
            for label in [label for label in runners if label.startswith(framework)]:
                del runners[label]
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run usvid with its parts added one at a time (where the overhead goes)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    runners = available_runners()
    if args.breakdown:
        runners.update(BREAKDOWN)
    quiet_frameworks()  # after the imports: Lightning sets its loggers' levels when imported

    generator = torch.Generator().manual_seed(0)
    pool = [
        (torch.randn(BATCH_SIZE, IN_FEATURES, generator=generator), torch.randn(BATCH_SIZE, 1, generator=generator))
        for _ in range(64)
    ]
    torch.manual_seed(0)
    template = TinyRegressor()
    robust_ms: Dict[str, List[float]] = {label: [] for label in runners}
    raw_ms: Dict[str, List[float]] = {label: [] for label in runners}
    for round_index in range(args.rounds):
        for label, runner in list(runners.items()):
            data = TimedBatches(pool, args.iters, args.warmup)
            with tempfile.TemporaryDirectory() as workdir:
                try:
                    runner(copy.deepcopy(template), data, workdir)
                except Exception as e:
                    print(f"SKIP {label}: it failed to run ({type(e).__name__}: {e})")
                    del runners[label], robust_ms[label], raw_ms[label]
                    continue
            robust, raw, dropped = data.per_iteration_ms()
            robust_ms[label].append(robust)
            raw_ms[label].append(raw)
            print(
                f"round {round_index + 1}/{args.rounds}  {label:36s} robust {robust:.4f} ms/it  "
                f"raw {raw:.4f} ms/it  ({dropped:.1%} intervals dropped)",
                flush=True,
            )

    plain = "plain PyTorch loop"
    print(
        f"\ntorch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"1 torch thread, {args.iters} iterations ({args.warmup} warm-up) x {args.rounds} rounds, interleaved"
    )
    print("Ratios are medians of per-round ratios (each run against the plain loop of its round).")
    print(
        "| framework | robust ms/it (median of rounds) | ratio to plain "
        "| raw mean ms/it (median of rounds) | ratio to plain |"
    )
    print("|---|---|---|---|---|")
    for label in robust_ms:
        cells = []
        for samples in (robust_ms, raw_ms):
            ratios = [value / base for value, base in zip(samples[label], samples[plain])]
            cells.append(f"{statistics.median(samples[label]):.4f} | {statistics.median(ratios):.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
