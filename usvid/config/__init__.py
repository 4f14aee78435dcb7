"""Config nodes with ``_BASE_`` inheritance and errors that name the key (``config.py``, whose
``__all__`` is this package's API), plus the application's keys (``ultrasound/``)."""

from . import config
from .config import *  # noqa: F403
from .ultrasound import add_ultrasound_config, load_ultrasound_config

__all__ = config.__all__ + ["add_ultrasound_config", "load_ultrasound_config"]
