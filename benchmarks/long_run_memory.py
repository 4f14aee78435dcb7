#!/usr/bin/env python
"""Long runs keep memory flat: RSS and open files of a small DefaultTrainer run after 5,000
iterations against after 500.

    python benchmarks/long_run_memory.py [--iters 5000] [--early 500] [--num-workers 2]
        [--tolerance 0.05] [--output output/bench/long_run_memory]

A small MLP trained by DefaultTrainer with every default hook (timer, LR scheduler, periodic
checkpoints every 1,000 iterations with max_to_keep 2, evaluation every 1,000, metrics.json /
TensorBoard / console writers) on a torch DataLoader with worker processes. A hook samples the
trainer's RSS (and its workers' RSS) and its number of open file descriptors at both points.
Exits non-zero when RSS or open files grew by more than ``--tolerance`` (relative) between
them.
"""

import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench_options import benchmark_parser  # noqa: E402

from usvid.config import get_cfg  # noqa: E402
from usvid.engine import DefaultTrainer, HookBase  # noqa: E402


def rss_kib(pid="self"):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def open_files():
    return len(os.listdir("/proc/self/fd"))


class RandomRegression(IterableDataset):
    def __iter__(self):
        generator = torch.Generator().manual_seed(
            torch.utils.data.get_worker_info().id if torch.utils.data.get_worker_info() else 0
        )
        while True:
            x = torch.randn(16, 32, generator=generator)
            yield x, x.sum(dim=1, keepdim=True)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, batch):
        x, y = batch
        prediction = self.net(x)
        if not self.training:
            return prediction
        return {"loss_mse": F.mse_loss(prediction, y)}


class MSE:
    def reset(self):
        self.errors = []

    def process(self, inputs, outputs):
        self.errors.append(((outputs - inputs[1]) ** 2).mean().item())

    def evaluate(self):
        return {"regression": {"mse": sum(self.errors) / len(self.errors)}}


class Trainer(DefaultTrainer):
    num_workers = 2

    @classmethod
    def build_model(cls, cfg):
        return MLP()

    @classmethod
    def build_train_loader(cls, cfg):
        return DataLoader(RandomRegression(), batch_size=None, num_workers=cls.num_workers)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        generator = torch.Generator().manual_seed(1)
        return [(x, x.sum(dim=1, keepdim=True)) for x in torch.randn(8, 16, 32, generator=generator)]

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        return MSE()


class Sampler(HookBase):
    """Records (iteration, trainer RSS KiB, workers' RSS KiB, open fds) after chosen iterations."""

    priority = 99

    def __init__(self, at):
        self.at = set(at)
        self.samples = []

    def after_step(self):
        if self.trainer.iter + 1 in self.at:
            import multiprocessing

            workers = sum(rss_kib(p.pid) for p in multiprocessing.active_children())
            self.samples.append((self.trainer.iter + 1, rss_kib(), workers, open_files()))


def main():
    args = benchmark_parser(
        __doc__,
        iters=5000,
        early=500,
        num_workers=2,
        tolerance=0.05,
        output=os.path.join(REPO, "output", "bench", "long_run_memory"),
    ).parse_args()
    torch.set_num_threads(1)
    shutil.rmtree(args.output, ignore_errors=True)

    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.OUTPUT_DIR = args.output
    cfg.DATASETS.TEST = ("random_regression",)
    cfg.SOLVER.BASE_LR = 0.01
    cfg.SOLVER.MAX_ITER = args.iters
    cfg.SOLVER.STEPS = ()
    cfg.SOLVER.CHECKPOINT_PERIOD = 1000
    cfg.SOLVER.MAX_TO_KEEP = 2
    cfg.TEST.EVAL_PERIOD = 1000
    Trainer.num_workers = args.num_workers
    trainer = Trainer(cfg)
    sampler = Sampler([args.early, args.iters - 1])
    trainer.register_hooks([sampler])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start

    (early_iter, early_rss, early_workers, early_fds), (late_iter, late_rss, late_workers, late_fds) = sampler.samples
    rss_growth = late_rss / early_rss - 1
    workers_growth = (late_workers / early_workers - 1) if early_workers else 0.0
    fds_growth = late_fds / early_fds - 1
    print(
        f"{args.iters} iterations in {seconds:.1f} s ({1000 * seconds / args.iters:.2f} ms/iter), "
        f"{args.num_workers} workers"
    )
    print("| after iteration | trainer RSS (MiB) | workers RSS (MiB) | open files |")
    print("|---|---|---|---|")
    print(f"| {early_iter} | {early_rss / 1024:.1f} | {early_workers / 1024:.1f} | {early_fds} |")
    print(f"| {late_iter} | {late_rss / 1024:.1f} | {late_workers / 1024:.1f} | {late_fds} |")
    print(f"| growth | {100 * rss_growth:+.1f}% | {100 * workers_growth:+.1f}% | {100 * fds_growth:+.1f}% |")
    flat = max(rss_growth, workers_growth, fds_growth) <= args.tolerance
    print("flat" if flat else f"GREW by more than {100 * args.tolerance:.0f}%")
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
