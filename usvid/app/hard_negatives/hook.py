"""The training hook that mines hard negatives periodically and swaps the train loader."""

import os
from typing import Callable

from usvid.engine import HookBase
from usvid.utils import comm

from .mining import mine_hard_negatives

__all__ = ["RefreshDataloaderHook", "hard_negative_config"]

# Mined files go to OUTPUT_DIR/<this>/fp_<iteration>.json.
HARD_NEGATIVE_FOLDER = "hard_negatives"


def hard_negative_config(cfg, fp_json: str):
    """A copy of ``cfg`` whose train loader samples windows around the frames of ``fp_json``."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "HardNegativeFrameSampler"
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = fp_json
    cfg.freeze()
    return cfg


class RefreshDataloaderHook(HookBase):
    """Every DATALOADER.REFRESH_PERIOD iterations, mine the training videos' false-positive
    frames with the current model and rebuild the train loader to draw windows around them
    INPUT.TRAIN_FRAME_SAMPLER.FP_SAMPLE_RATE times as often.

    The new loader continues the old one's clip stream (same ``sampler`` object, so the
    checkpoint's sampler position stays valid). The state is the latest mined file, relative to
    OUTPUT_DIR (so a moved output folder still resumes): a resumed run rebuilds the loader from it
    before training continues.

    Args:
        cfg: the training config (OUTPUT_DIR, DATASETS.TRAIN, the mining keys).
        build_train_loader: ``cfg -> loader`` (e.g. ``Trainer.build_train_loader``).
    """

    # Before the default hooks (50), in particular PeriodicCheckpointer: a checkpoint written at
    # a mining iteration must already record the new file, or a resume from it would diverge.
    priority = 40

    def __init__(self, cfg, build_train_loader: Callable):
        if cfg.DATALOADER.REFRESH_PERIOD <= 0:
            raise ValueError(
                f"DATALOADER.REFRESH_PERIOD must be > 0 for this hook, got {cfg.DATALOADER.REFRESH_PERIOD}"
            )
        self.cfg = cfg
        self.period = cfg.DATALOADER.REFRESH_PERIOD
        self._build_train_loader = build_train_loader
        self.latest_fp_json = ""
        self._installed_fp_json = ""

    def before_train(self):
        # After a resume, the loader built by the trainer does not know the mined file yet.
        if self.latest_fp_json and self.latest_fp_json != self._installed_fp_json:
            self._install_loader(self.latest_fp_json)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self.period != 0 or next_iter >= self.trainer.max_iter:
            return
        model = self.trainer.model
        model = comm.unwrap_model(model)
        file_name = os.path.join(HARD_NEGATIVE_FOLDER, f"fp_{self.trainer.iter:07d}.json")
        mine_hard_negatives(model, self.cfg, os.path.join(self.cfg.OUTPUT_DIR, file_name))
        self.latest_fp_json = file_name
        self._install_loader(file_name)

    def _install_loader(self, fp_json: str) -> None:
        sampler = self.trainer.data_loader.sampler

        def build_loader():
            loader = self._build_train_loader(
                hard_negative_config(self.cfg, os.path.join(self.cfg.OUTPUT_DIR, fp_json))
            )
            loader.sampler = sampler  # continue the same (checkpointed) clip stream
            return loader

        self.trainer.reset_data_loader(build_loader)
        self._installed_fp_json = fp_json

    def state_dict(self):
        return {"latest_fp_json": self.latest_fp_json}

    def load_state_dict(self, state):
        self.latest_fp_json = state["latest_fp_json"]
