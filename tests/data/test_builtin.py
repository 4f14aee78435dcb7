import json
import os

import pytest

import usvid.data.phantom as phantom_package
from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_video_detection_test_loader,
    build_video_detection_train_loader,
    check_dataset_names,
    phantom_root,
    prepare_phantom,
    register_builtin_datasets,
    register_cva_bus,
    register_phantom,
)


@pytest.fixture
def cfg(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.ROOT = str(tmp_path / "datasets")
    cfg.DATASETS.PHANTOM.NUM_VIDEOS = 3
    cfg.DATASETS.PHANTOM.FRAMES_PER_VIDEO = 4
    cfg.DATASETS.PHANTOM.IMAGE_SIZE = 48
    cfg.DATASETS.PHANTOM.TEST_FRACTION = 0.34
    return cfg


def test_phantom_root_names_every_parameter(cfg):
    assert phantom_root(cfg) == os.path.join(cfg.DATASETS.ROOT, "phantom_v3_f4_s48_seed0_t0.34")


def test_registration_is_lazy_and_repeatable(tmp_path, clean_catalog):
    assert register_phantom(str(tmp_path / "nowhere")) == ["phantom_trainval", "phantom_test"]
    assert register_phantom(str(tmp_path / "nowhere")) == ["phantom_trainval", "phantom_test"]
    assert register_cva_bus(str(tmp_path / "cva")) == ["cva_bus_trainval", "cva_bus_test"]
    assert MetadataCatalog.get("cva_bus_test").evaluator_type == "ultrasound_video"
    with pytest.raises(FileNotFoundError, match=r"nowhere/test.json does not exist"):
        DatasetCatalog.get("phantom_test")


def test_unregistered_dataset_names_fail_up_front_naming_the_key_and_close_names(cfg, clean_catalog):
    register_builtin_datasets(cfg)  # lazy: registering generates nothing
    check_dataset_names(cfg)  # the defaults are registered
    cfg.DATASETS.TEST = ("phantom_test", "phantom_tset")
    with pytest.raises(ValueError, match=r"DATASETS.TEST names 'phantom_tset'.*Did you mean: phantom_test"):
        check_dataset_names(cfg)
    assert not os.path.exists(cfg.DATASETS.ROOT)


def test_prepare_phantom_generates_once_atomically(cfg, monkeypatch, caplog):
    real_generator = phantom_package.generate_phantom_dataset
    calls = []

    def interrupted(root, **kwargs):
        calls.append(root)
        real_generator(root, **kwargs)
        raise KeyboardInterrupt  # dies after writing, before the cache is published

    monkeypatch.setattr(phantom_package, "generate_phantom_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_phantom(cfg)
    assert not os.path.exists(phantom_root(cfg))  # an interrupted run never looks like a cache
    assert calls[0] != phantom_root(cfg)

    def counted(root, **kwargs):
        calls.append(root)
        return real_generator(root, progress=False, **{k: v for k, v in kwargs.items() if k != "progress"})

    monkeypatch.setattr(phantom_package, "generate_phantom_dataset", counted)
    assert prepare_phantom(cfg) == phantom_root(cfg)
    assert prepare_phantom(cfg) == phantom_root(cfg)
    assert len(calls) == 2  # cached after the first complete generation

    meta_path = os.path.join(phantom_root(cfg), "phantom_meta.json")
    meta = json.load(open(meta_path))
    json.dump({**meta, "version": -1}, open(meta_path, "w"))
    prepare_phantom(cfg)  # written by another generator version: regenerated
    assert len(calls) == 3 and json.load(open(meta_path))["version"] == meta["version"]
    assert "stale" in caplog.text
    # no stale copy or temporary folder is left behind (this process's earlier one was reused)
    assert os.listdir(cfg.DATASETS.ROOT) == [os.path.basename(phantom_root(cfg))]


def test_phantom_round_trip_through_the_loaders(cfg, clean_catalog):
    """Generated phantom -> JSON -> registered names -> train and test loaders."""
    register_builtin_datasets(cfg)  # no phantom name in the config: registered, not generated
    assert "phantom_trainval" in DatasetCatalog.list() and "cva_bus_test" in DatasetCatalog.list()
    assert not os.path.exists(phantom_root(cfg))
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("phantom_trainval",), ("phantom_test",)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SEED = 0
    cfg.SOLVER.SEGS_PER_BATCH = 2
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = 3
    cfg.INPUT.FIXED_AREA_TRAIN = cfg.INPUT.FIXED_AREA_TEST = 64 * 64
    register_builtin_datasets(cfg)
    trainval, test = DatasetCatalog.get("phantom_trainval"), DatasetCatalog.get("phantom_test")
    assert len(trainval) + len(test) == 3 and len(test) == 1
    assert MetadataCatalog.get("phantom_test").thing_classes == ["lesion"]
    for video in trainval + test:
        assert (video["height"], video["width"]) == (48, 48) and len(video["frames"]) == 4
        assert video["is_negative"] == (not any(f["annotations"] for f in video["frames"]))
        for frame in video["frames"]:
            assert os.path.isfile(frame["file_name"])
            for ann in frame["annotations"]:
                x1, y1, x2, y2 = ann["bbox"]
                assert 0 <= x1 < x2 <= 48 and 0 <= y1 < y2 <= 48 and ann["category_id"] == 0

    batch = next(iter(build_video_detection_train_loader(cfg)))
    assert len(batch) == 2 and all(len(clip) == 3 for clip in batch)
    assert all(tuple(f["image"].shape) == (1, 64, 64) for clip in batch for f in clip)
    loader = build_video_detection_test_loader(cfg, "phantom_test")
    frames = [b[0] for b in loader]
    assert len(frames) == len(loader) == 4
    assert [f["frame_idx"] for f in frames] == [f["frame_idx"] for f in test[0]["frames"]]
    boxes = [len(f["instances"]) for f in frames]
    assert boxes == [len(f["annotations"]) for f in test[0]["frames"]]
