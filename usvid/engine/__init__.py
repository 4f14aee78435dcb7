"""The training engine: trainers, hooks and (added by their authors) defaults and launch."""

from .amp_trainer import *  # noqa: F401,F403
from .default_trainer import *  # noqa: F401,F403
from .defaults import *  # noqa: F401,F403
from .hooks import *  # noqa: F401,F403
from .launch import *  # noqa: F401,F403
from .run_folder import *  # noqa: F401,F403
from .train_loop import *  # noqa: F401,F403
