from .checkpointer import CheckpointLoadError, Checkpointer, PeriodicCheckpointer

__all__ = ["Checkpointer", "PeriodicCheckpointer", "CheckpointLoadError"]
