"""Checkpoints: ``Checkpointer`` (what a file holds, written atomically, read back exactly) and
``PeriodicCheckpointer`` (when to save and which files to keep)."""

from .checkpointer import *  # noqa: F401,F403
from .periodic_checkpointer import *  # noqa: F401,F403
