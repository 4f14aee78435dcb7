"""Config keys of the Ultrasound VID training flow (tools/train_net.py): output folders
(hard-negative mining has its own module, hard_negatives.py)."""

from ..config import CfgNode as CN


def add_training_flow_config(cfg: CN) -> None:
    """Add the training-flow keys to ``cfg`` in place."""
    # When True, OUTPUT_DIR becomes OUTPUT_DIR/<config path below configs/ without .yaml> (with
    # OUTPUT_DIR ./output: configs/phantom/ultradet.yaml -> output/phantom/ultradet), so runs
    # never collide.
    cfg.AUTO_DIR = False
