from .checkpointer import (
    CheckpointLoadError,
    Checkpointer,
    CheckpointSaveError,
    DetectionCheckpointer,
    PeriodicCheckpointer,
)

__all__ = ["Checkpointer", "DetectionCheckpointer", "PeriodicCheckpointer", "CheckpointLoadError", "CheckpointSaveError"]
