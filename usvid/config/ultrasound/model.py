"""Config keys of the model area of the Ultrasound VID application."""

from ..config import CfgNode as CN


def add_model_config(cfg: CN) -> None:
    """Add the model keys to ``cfg`` in place."""
