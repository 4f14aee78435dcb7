"""Video datasets, clip sampling and loaders of the Ultrasound VID application."""

from . import datasets
from .build import (
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    get_video_dataset_dicts,
    split_videos_by_frames,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog

# The dataset formats and built-in names are part of this package's API; datasets/__init__.py
# owns their list.
from .datasets import *  # noqa: F403
from .frame_sampler import WindowFrameSampler
from .mapper import ClipMapper

__all__ = [
    "ClipMapper",
    "DatasetCatalog",
    "Metadata",
    "MetadataCatalog",
    "WindowFrameSampler",
    "build_video_detection_test_loader",
    "build_video_detection_train_loader",
    "get_video_dataset_dicts",
    "split_videos_by_frames",
] + datasets.__all__
