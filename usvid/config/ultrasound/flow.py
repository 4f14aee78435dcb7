"""Config keys of the Ultrasound VID training flow (tools/train_net.py): output folders and
hard-negative mining."""

from ..config import CfgNode as CN


def add_training_flow_config(cfg: CN) -> None:
    """Add the training-flow keys to ``cfg`` in place."""
    # Name OUTPUT_DIR after the config file (outputs/<config path without .yaml>) when True.
    cfg.AUTO_DIR = False
    # Hard-negative mining: every REFRESH_PERIOD iterations (0 = never) the current model runs
    # over the training videos, the frames with false-positive sequences are written to a JSON
    # file in the output folder, and the train loader is rebuilt to sample them more often.
    cfg.DATALOADER.REFRESH_PERIOD = 0
    # Mine false positives per video (True) rather than from one pooled score threshold.
    cfg.DATASETS.SAMPLE_FP_BY_VIDEO = False
