"""Dataset formats (COCO-video JSON, the CSV menu) and the built-in dataset names."""

from .builtin import (
    check_dataset_names,
    load_ground_truth,
    phantom_root,
    prepare_phantom,
    register_builtin_datasets,
    register_buv,
    register_coco_video,
    register_cva_bus,
    register_phantom,
)
from .coco_video import load_coco_video_json
from .ultrasound_menu import load_ultrasound_menu, register_ultrasound_menu
from .validation import DatasetFormatError

__all__ = [
    "check_dataset_names",
    "DatasetFormatError",
    "load_coco_video_json",
    "load_ground_truth",
    "load_ultrasound_menu",
    "phantom_root",
    "prepare_phantom",
    "register_builtin_datasets",
    "register_buv",
    "register_coco_video",
    "register_cva_bus",
    "register_phantom",
    "register_ultrasound_menu",
]
