from .checkpointer import CheckpointLoadError, Checkpointer, CheckpointSaveError, PeriodicCheckpointer

__all__ = ["Checkpointer", "PeriodicCheckpointer", "CheckpointLoadError", "CheckpointSaveError"]
