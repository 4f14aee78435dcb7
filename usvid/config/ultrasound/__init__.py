"""The Ultrasound VID application's config keys, added on top of the engine's defaults.

Each area keeps its keys in its own module so that a key lives next to the code that reads it.
"""

from typing import Sequence

from ..config import CfgNode, get_cfg
from .data import add_data_config
from .engine_values import set_engine_key_values
from .flow import add_training_flow_config
from .hard_negatives import add_hard_negative_config
from .model import add_model_config


def add_ultrasound_config(cfg: CfgNode) -> CfgNode:
    """Add every application key (data, models, training flow, hard-negative mining) to ``cfg`` in
    place, and set the application's values of the engine's model and input keys; returns it."""
    set_engine_key_values(cfg)
    add_data_config(cfg)
    add_model_config(cfg)
    add_training_flow_config(cfg)
    add_hard_negative_config(cfg)
    return cfg


def load_ultrasound_config(config_file: str = "", opts: Sequence = ()) -> CfgNode:
    """The application's config as the tools build it: every default, then ``config_file`` (with
    its ``_BASE_`` chain; none when empty), then the command line's KEY VALUE ``opts``."""
    cfg = add_ultrasound_config(get_cfg())
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg
