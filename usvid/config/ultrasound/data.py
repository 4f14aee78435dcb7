"""Config keys of the data area of the Ultrasound VID application."""

from ..config import CfgNode as CN


def add_data_config(cfg: CN) -> None:
    """Add the data keys to ``cfg`` in place."""
