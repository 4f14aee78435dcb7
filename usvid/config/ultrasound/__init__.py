"""The Ultrasound VID application's config keys, added on top of the engine's defaults.

Each area keeps its keys in its own module so that a key lives next to the code that reads it.
"""

from ..config import CfgNode
from .data import add_data_config
from .flow import add_training_flow_config
from .model import add_model_config


def add_ultrasound_config(cfg: CfgNode) -> CfgNode:
    """Add every application key (data, models, training flow) to ``cfg`` in place; returns it."""
    add_data_config(cfg)
    add_model_config(cfg)
    add_training_flow_config(cfg)
    return cfg
