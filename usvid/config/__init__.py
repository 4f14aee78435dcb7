from .config import CfgNode, get_cfg
from .ultrasound import add_ultrasound_config

__all__ = ["CfgNode", "get_cfg", "add_ultrasound_config"]
