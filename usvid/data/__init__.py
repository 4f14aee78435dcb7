"""Video datasets, clip sampling and loaders of the Ultrasound VID application."""

from .build import (
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    get_video_dataset_dicts,
    split_videos_by_frames,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .datasets import (
    DatasetFormatError,
    check_dataset_names,
    load_coco_video_json,
    load_ground_truth,
    load_ultrasound_menu,
    phantom_root,
    prepare_phantom,
    register_builtin_datasets,
    register_coco_video,
    register_cva_bus,
    register_phantom,
    register_ultrasound_menu,
)
from .frame_sampler import WindowFrameSampler
from .mapper import ClipMapper

__all__ = [
    "ClipMapper",
    "DatasetCatalog",
    "DatasetFormatError",
    "Metadata",
    "MetadataCatalog",
    "WindowFrameSampler",
    "build_video_detection_test_loader",
    "build_video_detection_train_loader",
    "check_dataset_names",
    "get_video_dataset_dicts",
    "load_coco_video_json",
    "load_ground_truth",
    "load_ultrasound_menu",
    "phantom_root",
    "prepare_phantom",
    "register_builtin_datasets",
    "register_coco_video",
    "register_cva_bus",
    "register_phantom",
    "register_ultrasound_menu",
    "split_videos_by_frames",
]
