from .config import (
    CfgNode,
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigKeyError,
    ConfigTypeError,
    get_cfg,
    resolve_device,
)
from .ultrasound import add_ultrasound_config, load_ultrasound_config

__all__ = [
    "CfgNode",
    "get_cfg",
    "add_ultrasound_config",
    "load_ultrasound_config",
    "resolve_device",
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
]
