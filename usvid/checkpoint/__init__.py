from .checkpointer import (
    Checkpointer,
    CheckpointLoadError,
    CheckpointSaveError,
    DetectionCheckpointer,
    PeriodicCheckpointer,
)

__all__ = [
    "Checkpointer",
    "DetectionCheckpointer",
    "PeriodicCheckpointer",
    "CheckpointLoadError",
    "CheckpointSaveError",
]
