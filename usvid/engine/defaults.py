"""The config-driven defaults on top of the engine core (detectron2 semantics): the command line
of training scripts, process setup, the standard writers, DDP wrapping and the checks of a
config's schedule and expected results. ``DefaultTrainer``, built from them, is in
usvid/engine/default_trainer.py.
"""

import argparse
import inspect
import logging
import os
import shlex
import sys
from typing import Any, List, Mapping, Optional

import torch
import torch.utils.deterministic
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config import CfgNode, ConfigError, resolve_device
from ..utils import comm
from ..utils.cpu_budget import apply_thread_budget
from ..utils.env import collect_env_info, seed_all_rng
from ..utils.events import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter
from ..utils.file_io import atomic_write
from ..utils.logger import setup_logger
from .run_folder import RunFolderLock, check_weights_outside_archived_run, log_moved_run, move_previous_run

__all__ = [
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "create_ddp_model",
    "verify_results",
    "check_schedule_config",
    "deterministic_kernels_wanted",
]

logger = logging.getLogger(__name__)

# How often DefaultTrainer's PeriodicWriter writes (detectron2's 20); resume rewinds to it.
METRICS_WRITE_PERIOD = 20
METRICS_FILE = "metrics.json"


def default_argument_parser(epilog: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line shared by training scripts; trailing ``KEY VALUE`` pairs override the
    config (``SOLVER.BASE_LR 0.01``)."""
    parser = argparse.ArgumentParser(epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in OUTPUT_DIR (else start from MODEL.WEIGHTS)",
    )
    parser.add_argument("--eval-only", action="store_true", help="only evaluate the model")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine (CPU processes without a GPU)")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)")
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="initialisation URL of torch.distributed: 'auto' picks a free local port (one "
        "machine); for several machines give tcp://<machine 0 address>:<port>",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs at the end of the command, e.g. SOLVER.BASE_LR 0.01",
    )
    return parser


def default_setup(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Prepare a training/evaluation process: OUTPUT_DIR, per-rank logging, environment info,
    the merged config and launching command saved next to the results, and seeding.

    A training run (no ``args.eval_only``) locks OUTPUT_DIR for the life of the process and,
    unless ``args.resume``, first moves an earlier run in it aside (usvid.engine.run_folder),
    before anything of the new run is written there."""
    output_dir = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    moved = None
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
        if not getattr(args, "eval_only", False):
            RunFolderLock(output_dir).acquire()  # held until this process ends
            if not getattr(args, "resume", False):
                check_weights_outside_archived_run(output_dir, cfg.MODEL.WEIGHTS)
                moved = move_previous_run(output_dir)
    comm.synchronize()  # the folder exists before any rank opens its log file there
    setup_logger(output_dir or None, distributed_rank=rank)
    if moved is not None:
        log_moved_run(output_dir, *moved)
    logger.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    # Before the environment table, which lists torch's thread count.
    apply_thread_budget(cfg.CPU_THREADS, cfg.DATALOADER.NUM_WORKERS, comm.get_local_size())
    logger.info("Environment info:\n" + collect_env_info())
    logger.info(f"Command line arguments: {args}")
    config_file = getattr(args, "config_file", "")
    if config_file:
        with open(config_file) as f:
            logger.info(f"Contents of args.config_file={config_file}:\n{f.read()}")
    if comm.is_main_process() and output_dir:
        config_path = os.path.join(output_dir, "config.yaml")
        with atomic_write(config_path, "w") as f:
            f.write(cfg.dump())
        logger.info(f"Full config saved to {config_path}")
        with atomic_write(os.path.join(output_dir, "command.txt"), "w") as f:
            f.write(shlex.join([sys.executable] + sys.argv) + "\n")
    seed = seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + rank)
    logger.info(f"Random seed of rank {rank}: {seed}")
    _use_deterministic_kernels_if_asked(cfg)
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK


def deterministic_kernels_wanted(cfg: CfgNode) -> bool:
    """cfg.DETERMINISTIC, where None means: on for a CPU run, off for a CUDA one.

    With several CPU threads the backward passes of convolutions and batch norms do not repeat
    bitwise (weight gradients differ by ~1e-7 from pass to pass), so two runs drift apart;
    deterministic kernels make runs (and exact resume) repeat bitwise. On the CPU they cost
    about 0.5 % per iteration, so repeatable runs are the default there; on CUDA the cost is
    the GPU's to measure, and the default stays off."""
    if cfg.DETERMINISTIC is None:
        return resolve_device(cfg.MODEL.DEVICE) == "cpu"
    return bool(cfg.DETERMINISTIC)


def _use_deterministic_kernels_if_asked(cfg: CfgNode) -> None:
    if not deterministic_kernels_wanted(cfg):
        return
    if cfg.CUDNN_BENCHMARK and cfg.DETERMINISTIC:
        raise ValueError(
            "DETERMINISTIC=True and CUDNN_BENCHMARK=True contradict each other (the cuDNN autotuner "
            "picks kernels by timing them); set CUDNN_BENCHMARK False or DETERMINISTIC False"
        )
    # cuBLAS repeats its results only with a fixed workspace, read when CUDA initialises.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new uninitialised tensor with NaN, a debugging aid that
    # makes reads of uninitialised memory visible. It changes nothing that correct code computes,
    # and it cost 12 % of the CPU time of a phantom UltraDet training step (about 3,000 fills).
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic = True
    logger.info("DETERMINISTIC: only deterministic kernels are used (slower, bitwise repeatable)")


def default_writers(output_dir: str, max_iter: Optional[int] = None) -> List[EventWriter]:
    """Console progress, ``metrics.json`` and TensorBoard event files in ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, METRICS_FILE)),
        TensorboardXWriter(output_dir),
    ]


def create_ddp_model(model: nn.Module, **kwargs: Any) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when the world size is > 1 (unchanged on
    one process). Buffers are synchronised at construction but not before every forward pass:
    each rank then keeps its own BN statistics, and no collective is spent per step."""
    if comm.get_world_size() == 1:
        return model
    if torch.cuda.is_available() and "device_ids" not in kwargs:
        kwargs["device_ids"] = [comm.get_local_rank()]
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        kwargs.setdefault("forward_sync_buffers", False)
    else:  # torch releases before forward_sync_buffers
        kwargs.setdefault("broadcast_buffers", False)
    return DistributedDataParallel(model, **kwargs)


def verify_results(cfg: CfgNode, results: Mapping[str, Mapping[str, float]]) -> bool:
    """Check ``results[task][metric]`` against ``cfg.TEST.EXPECTED_RESULTS`` entries
    ``[task, metric, expected, tolerance]``; logs every failure and returns whether all passed."""
    ok = True
    for task, metric, expected, tolerance in cfg.TEST.EXPECTED_RESULTS:
        actual = results.get(task, {}).get(metric)
        if actual is None or not abs(float(actual) - expected) <= tolerance:
            logger.error(f"Result verification failed: {task}/{metric} = {actual}, expected {expected} ± {tolerance}")
            ok = False
    if ok:
        logger.info("Results verification passed.")
    return ok


# (key, smallest valid value) of the schedule: a value below it would fail deep inside a hook or
# the solver with a message that does not name the key, or make training silently do nothing.
SCHEDULE_MINIMUMS = (
    ("SOLVER.MAX_ITER", 1),
    ("SOLVER.CHECKPOINT_PERIOD", 1),
    ("SOLVER.BASE_LR", 0.0),
    ("TEST.EVAL_PERIOD", 0),
)


def check_schedule_config(cfg: CfgNode) -> None:
    """Raise a ConfigError naming the key when a schedule value is missing or out of range."""
    for key, minimum in SCHEDULE_MINIMUMS:
        node = cfg
        for part in key.split("."):
            node = node[part]
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node < minimum:
            raise ConfigError(f"{key} must be a number >= {minimum}, got {node!r}")


def __getattr__(name: str) -> Any:
    """``usvid.engine.defaults.DefaultTrainer``, where detectron2 users look for it (imported
    on first use: default_trainer.py itself builds on this module)."""
    if name == "DefaultTrainer":
        from .default_trainer import DefaultTrainer

        return DefaultTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
