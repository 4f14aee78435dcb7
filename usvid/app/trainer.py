"""The Ultrasound VID :class:`Trainer`: detectron2's ``DefaultTrainer`` with the application's
model, clip loaders, video evaluator, streaming inference and hard-negative mining plugged in
through its ``build_*`` classmethods and hooks (the engine itself knows nothing of ultrasound)."""

import logging
import os

from tabulate import tabulate

from usvid.data import build_video_detection_test_loader, build_video_detection_train_loader
from usvid.engine import DefaultTrainer
from usvid.evaluation import UltrasoundVideoEvaluator, inference_on_video_dataset, print_csv_format
from usvid.modeling import build_model
from usvid.utils import comm
from usvid.utils.logger import log_model

from .hard_negatives import RefreshDataloaderHook

# Named after the tool whose log these lines have always been in (tools/train_net.py).
logger = logging.getLogger(__name__)

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
        log_model(logger, model)
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        return build_video_detection_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_video_detection_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return UltrasoundVideoEvaluator(dataset_name, output_folder or inference_dir(cfg, dataset_name))

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
                logger.info(f"Evaluation results for {dataset_name} in csv format:")
                print_csv_format(dataset_results)
            if len(by_dataset) > 1:
                logger.info(f"Summary over the test datasets:\n{summary_table(by_dataset)}")
        return results

    def build_hooks(self):
        hooks = super().build_hooks()
        if self.cfg.DATALOADER.REFRESH_PERIOD > 0:
            hooks.append(RefreshDataloaderHook(self.cfg, self.build_train_loader))
        return hooks


def inference_dir(cfg, dataset_name):
    """Where the evaluation of ``dataset_name`` writes metrics.json, predictions.json and plots."""
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)


def summary_table(results):
    """One row per dataset with the headline metrics (SUMMARY_KEYS) of its first task."""
    rows = []
    for dataset_name, dataset_results in results.items():
        metrics = next(iter(dataset_results.values()), {}) if dataset_results else {}
        rows.append([dataset_name] + [metrics.get(key, float("nan")) for key in SUMMARY_KEYS])
    return tabulate(rows, headers=["dataset", *SUMMARY_KEYS], floatfmt=".4f", tablefmt="pipe")
