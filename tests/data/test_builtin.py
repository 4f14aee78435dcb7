import json
import os

import pytest

import usvid.data.phantom as phantom_package
from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import DatasetCatalog, MetadataCatalog, phantom_root, prepare_phantom, register_builtin_datasets
from usvid.data import register_cva_bus, register_phantom


@pytest.fixture
def cfg(tmp_path):
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.ROOT = str(tmp_path / "datasets")
    cfg.DATASETS.PHANTOM.NUM_VIDEOS = 3
    cfg.DATASETS.PHANTOM.FRAMES_PER_VIDEO = 4
    cfg.DATASETS.PHANTOM.IMAGE_SIZE = 32
    cfg.DATASETS.PHANTOM.TEST_FRACTION = 0.34
    return cfg


def test_phantom_root_names_every_parameter(cfg):
    assert phantom_root(cfg) == os.path.join(cfg.DATASETS.ROOT, "phantom_v3_f4_s32_seed0_t0.34")


def test_registration_is_lazy_and_repeatable(tmp_path, clean_catalog):
    assert register_phantom(str(tmp_path / "nowhere")) == ["phantom_trainval", "phantom_test"]
    assert register_phantom(str(tmp_path / "nowhere")) == ["phantom_trainval", "phantom_test"]
    assert register_cva_bus(str(tmp_path / "cva")) == ["cva_bus_trainval", "cva_bus_test"]
    assert MetadataCatalog.get("cva_bus_test").evaluator_type == "ultrasound_video"
    with pytest.raises(FileNotFoundError, match=r"nowhere/test.json does not exist"):
        DatasetCatalog.get("phantom_test")


def fake_generator(coco_writer, calls, fail=False):
    """Writes a tiny CVA-BUS layout like the real generator (the tests of the real one are in
    tests/phantom); fail=True dies halfway, like an interrupted generation."""
    def generate(root, num_videos, frames_per_video, image_size, seed, test_fraction, **kwargs):
        calls.append(root)
        coco_writer(root, [[[[2, 2, 8, 8]]] * frames_per_video], json_name="trainval.json")
        if fail:
            raise KeyboardInterrupt
        coco_writer(root, [[[]] * frames_per_video], json_name="test.json")
        with open(os.path.join(root, "phantom_meta.json"), "w") as f:
            json.dump({"seed": seed}, f)
    return generate


def test_prepare_phantom_generates_once_atomically(cfg, coco_writer, monkeypatch):
    calls = []
    monkeypatch.setattr(phantom_package, "generate_phantom_dataset", fake_generator(coco_writer, calls, fail=True),
                        raising=False)
    with pytest.raises(KeyboardInterrupt):
        prepare_phantom(cfg)
    assert not os.path.exists(phantom_root(cfg))  # an interrupted run never looks like a cache
    assert calls[0] != phantom_root(cfg)
    monkeypatch.setattr(phantom_package, "generate_phantom_dataset", fake_generator(coco_writer, calls),
                        raising=False)
    assert prepare_phantom(cfg) == phantom_root(cfg)
    assert prepare_phantom(cfg) == phantom_root(cfg)
    assert len(calls) == 2  # cached after the first complete generation


def test_register_builtin_datasets_generates_only_when_named(cfg, coco_writer, monkeypatch, clean_catalog):
    calls = []
    monkeypatch.setattr(phantom_package, "generate_phantom_dataset", fake_generator(coco_writer, calls),
                        raising=False)
    register_builtin_datasets(cfg)
    assert calls == [] and "phantom_trainval" in DatasetCatalog.list() and "cva_bus_test" in DatasetCatalog.list()
    cfg.DATASETS.TRAIN = ("phantom_trainval",)
    register_builtin_datasets(cfg)
    assert len(calls) == 1
    (video,) = DatasetCatalog.get("phantom_trainval")
    assert video["frames"][0]["file_name"].startswith(phantom_root(cfg))
    assert MetadataCatalog.get("phantom_trainval").thing_classes == ["lesion"]
