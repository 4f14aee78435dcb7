#!/usr/bin/env python
"""Ultrasound VID training and evaluation script (detectron2's tools/train_net.py for videos).

    python tools/train_net.py --config-file configs/phantom/ultradet.yaml [KEY VALUE ...]
    python tools/train_net.py --config-file ... --resume          # continue from the last checkpoint
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS path/to/model.pth
    python tools/train_net.py --config-file ... --num-gpus 2      # 2 processes (CPU: gloo)

The flow: ``setup`` builds the config (engine defaults + application keys + the file + command
line overrides; with ``AUTO_DIR`` the output folder is named after the config file), registers
the datasets (generating the phantom on first use), and on the main process backs up the code
and config into ``OUTPUT_DIR/code_<timestamp>`` so every result can be traced to the code that
produced it. ``--eval-only`` loads the weights and evaluates every dataset of DATASETS.TEST;
otherwise :class:`Trainer` trains with periodic evaluation, checkpoints and, when
DATALOADER.REFRESH_PERIOD > 0, hard-negative mining.

The application logic lives in the library (usvid.data, usvid.modeling, usvid.evaluation); this
script only wires it into the engine, and tools/plain_train_net.py imports ``setup`` and
``Trainer`` (for ``Trainer.test``) from here instead of copying them.
"""

import logging
import os
import shutil
import sys
import time

from tabulate import tabulate

from usvid.checkpoint import CheckpointLoadError
from usvid.config import ConfigError, load_ultrasound_config
from usvid.data import (
    DatasetFormatError,
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    check_dataset_names,
    register_builtin_datasets,
)
from usvid.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from usvid.evaluation import UltrasoundVideoEvaluator, inference_on_video_dataset, print_csv_format
from usvid.evaluation.hard_negatives import RefreshDataloaderHook
from usvid.modeling import build_model
from usvid.utils import comm

logger = logging.getLogger("usvid.train_net")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The metrics shown side by side in the summary over several test datasets.
SUMMARY_KEYS = ("AP50", "Pr80", "FP80", "R@16", "FPS")


class Trainer(DefaultTrainer):
    """DefaultTrainer with the Ultrasound VID model, clip loaders, video evaluator and streaming
    inference. The optimizer (SGD/AdamW, ADAM_BETA, LR_MULTIPLIERS, clipping) and LR schedule
    come unchanged from DefaultTrainer, which builds them with usvid.solver."""

    # The clip loader's batch: scaled with the world size like the engine's IMS_PER_BATCH.
    BATCH_SIZE_KEYS = DefaultTrainer.BATCH_SIZE_KEYS + ("SEGS_PER_BATCH",)

    @classmethod
    def build_model(cls, cfg):
        model = build_model(cfg)
        logger.info("Model:\n%s", model)
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        return build_video_detection_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_video_detection_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return UltrasoundVideoEvaluator(dataset_name, output_folder or _inference_dir(cfg, dataset_name))

    @classmethod
    def inference(cls, model, data_loader, evaluator):
        """Causal frame-by-frame inference with ``model.reset()`` at every new video."""
        return inference_on_video_dataset(model, data_loader, evaluator)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """``DefaultTrainer.test`` (every dataset of DATASETS.TEST through ``build_test_loader``,
        ``build_evaluator`` and ``inference``, which a subclass may override) on the bare model,
        then a csv table per dataset and, for several datasets, one summary table.

        Returns ``{dataset: {"lesion_detection": {...}}}``, or that inner dict alone for a single
        dataset (detectron2's convention, which EvalHook and BestCheckpointer rely on)."""
        # Streaming inference calls model.reset(), which a DistributedDataParallel wrapper lacks.
        results = super().test(cfg, comm.unwrap_model(model), evaluators)
        if comm.is_main_process():
            by_dataset = {cfg.DATASETS.TEST[0]: results} if len(cfg.DATASETS.TEST) == 1 else results
            for dataset_name, dataset_results in by_dataset.items():
                logger.info("Evaluation results for %s in csv format:", dataset_name)
                print_csv_format(dataset_results)
            if len(by_dataset) > 1:
                logger.info("Summary over the test datasets:\n%s", summary_table(by_dataset))
        return results

    def build_hooks(self):
        hooks = super().build_hooks()
        if self.cfg.DATALOADER.REFRESH_PERIOD > 0:
            hooks.append(RefreshDataloaderHook(self.cfg, self.build_train_loader))
        return hooks


def _inference_dir(cfg, dataset_name):
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)


def summary_table(results):
    """One row per dataset with the headline metrics (SUMMARY_KEYS) of its first task."""
    rows = []
    for dataset_name, dataset_results in results.items():
        metrics = next(iter(dataset_results.values()), {}) if dataset_results else {}
        rows.append([dataset_name] + [metrics.get(key, float("nan")) for key in SUMMARY_KEYS])
    return tabulate(rows, headers=["dataset", *SUMMARY_KEYS], floatfmt=".4f", tablefmt="pipe")


def auto_output_dir(output_root, config_file):
    """OUTPUT_DIR for AUTO_DIR: ``output_root/<config path below configs/, without .yaml>``,
    e.g. configs/phantom/ultradet.yaml -> output/phantom/ultradet, so runs of different configs
    never overwrite each other."""
    parts = os.path.splitext(os.path.abspath(config_file))[0].split(os.sep)
    if "configs" in parts:
        last_configs = len(parts) - 1 - parts[::-1].index("configs")
        return os.path.join(output_root, *parts[last_configs + 1 :])
    return os.path.join(output_root, parts[-1])


def backup_code(output_dir, config_file):
    """Copy the .py files of usvid/ and tools/ plus the config file into
    ``output_dir/code_<UTC timestamp>`` (a record of exactly what produced the results)."""
    backup_dir = os.path.join(output_dir, "code_" + time.strftime("%Y%m%d_%H%M%S", time.gmtime()))
    for package in ("usvid", "tools"):
        source_root = os.path.join(REPO_ROOT, package)
        for folder, _, files in os.walk(source_root):
            for file_name in files:
                if file_name.endswith(".py"):
                    relative = os.path.relpath(os.path.join(folder, file_name), REPO_ROOT)
                    os.makedirs(os.path.join(backup_dir, os.path.dirname(relative)), exist_ok=True)
                    shutil.copy2(os.path.join(REPO_ROOT, relative), os.path.join(backup_dir, relative))
    if config_file:
        shutil.copy2(config_file, os.path.join(backup_dir, os.path.basename(config_file)))
    return backup_dir


def setup(args):
    """The frozen config for ``args``; sets up logging and output, registers the datasets."""
    cfg = load_ultrasound_config(args.config_file, args.opts)
    if cfg.AUTO_DIR:
        if not args.config_file:
            raise ValueError("AUTO_DIR True names OUTPUT_DIR after --config-file, but none was given")
        cfg.OUTPUT_DIR = auto_output_dir(cfg.OUTPUT_DIR, args.config_file)
    cfg.freeze()
    default_setup(cfg, args)
    # The main process generates the phantom on first use; the others wait, then register it.
    if comm.is_main_process():
        register_builtin_datasets(cfg)
        backup_code(cfg.OUTPUT_DIR, args.config_file)
    comm.synchronize()
    if not comm.is_main_process():
        register_builtin_datasets(cfg)
    check_dataset_names(cfg)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        Trainer.load_trained_weights(cfg, model, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def invoke_main(main_func=None):
    """Parse the standard arguments and run ``main_func(args)`` (default: this file's ``main``)
    on every process ``--num-gpus`` / ``--num-machines`` ask for; tools built on this flow
    (plain_train_net.py, your own scripts) pass their own ``main``."""
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    run_cli(
        launch,
        main_func or main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


# Errors in what the user gave (a config, a dataset file, a checkpoint): their message says what
# is wrong and where, and a traceback through usvid's internals would only bury it.
USER_INPUT_ERRORS = (ConfigError, DatasetFormatError, CheckpointLoadError, FileNotFoundError)


def run_cli(func, *args, **kwargs):
    """``func(*args, **kwargs)`` for a command-line tool: an error in the user's input ends the
    process with its message and exit code 2 (the traceback too with USVID_DEBUG=1)."""
    try:
        return func(*args, **kwargs)
    except USER_INPUT_ERRORS as error:
        if os.environ.get("USVID_DEBUG"):
            raise
        print(f"error: {error}\n(set USVID_DEBUG=1 to see where it was raised)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    sys.exit(invoke_main())
