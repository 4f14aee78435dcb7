"""CVA-BUS and BUV exactly as they ship: frames under root/rawframes/<category>/<video>/, JSON
file names relative to rawframes (or only the base name, UltraDet style), and the older
root-relative convention, all loading to the same video dicts."""

import json
import logging
import os

import pytest

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import DatasetCatalog, register_builtin_datasets, register_buv, register_cva_bus
from usvid.data.datasets import load_coco_video_json

BOXES = [[[[2, 3, 10, 5]], []], [[], [[4, 4, 6, 6]], []]]  # two videos, XYWH boxes per frame
TWO_CATEGORIES = [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}]


@pytest.fixture
def usvid_logs(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)  # setup_logger() turns it off
    caplog.set_level(logging.INFO, logger="usvid.data")
    return caplog


@pytest.mark.parametrize(
    "style, rule",
    [
        ("root", "image_root/file_name"),
        ("rawframes", "image_root/rawframes/file_name"),
        ("basename", "image_root/rawframes/<video name>/<basename(file_name)>"),
    ],
)
def test_every_file_name_convention_loads_the_same_frames_and_logs_its_rule(
    tmp_path, coco_writer, usvid_logs, style, rule
):
    path = coco_writer(tmp_path, BOXES, file_names=style, folders=("benign", "malignant"))
    first, second = load_coco_video_json(path, str(tmp_path))
    root = str(tmp_path)
    assert [f["file_name"] for f in first["frames"]] == [
        os.path.join(root, "rawframes", "benign", "video_00", f"{i:06d}.png") for i in range(2)
    ]
    assert second["video_folder"] == os.path.join(root, "rawframes", "malignant", "video_01")
    assert first["frames"][0]["annotations"][0]["bbox"] == [2.0, 3.0, 12.0, 8.0]
    assert f"{path}: 5 frames found as {rule} (image_root={root})" in usvid_logs.text


def test_a_file_is_resolved_by_one_rule_never_frame_by_frame(tmp_path, coco_writer):
    """Frames findable only by mixing two rules are an error, not a silent mix of two copies."""
    path = coco_writer(tmp_path, [[[], []]], file_names="rawframes")
    moved = tmp_path / "benign" / "video_00"
    moved.mkdir(parents=True)
    os.rename(tmp_path / "rawframes/benign/video_00/000001.png", moved / "000001.png")
    with pytest.raises(FileNotFoundError, match=r"image_root/file_name: 1 of 2 frame file\(s\) do not exist") as error:
        load_coco_video_json(path, str(tmp_path))
    assert "image_root/rawframes/file_name: 1 of 2 frame file(s) do not exist" in str(error.value)


def test_basename_rule_needs_video_names(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[]]], file_names="basename")
    data = json.load(open(path))
    del data["videos"]
    data["images"][0]["height"] = data["images"][0]["width"] = 32
    json.dump(data, open(path, "w"))
    with pytest.raises(
        FileNotFoundError, match=r"<basename\(file_name\)>: not applicable, 1 frame\(s\) have no video name"
    ):
        load_coco_video_json(path, str(tmp_path))


def write_cva_bus(root, coco_writer):
    """The CVA-BUS release: trainval.json and test.json, file names relative to rawframes/."""
    coco_writer(root, BOXES, json_name="trainval.json", file_names="rawframes", folders=("benign", "malignant"))
    coco_writer(root, [[[[1, 1, 8, 8]]]], json_name="test.json", file_names="rawframes")
    for name in ("trainval.json", "test.json"):
        _two_categories(os.path.join(root, name))


def write_buv(root, coco_writer):
    """The BUV release (CVA-Net): ImageNet-VID style files named imagenet_vid_*.json."""
    for name, boxes in (("imagenet_vid_train_15frames.json", BOXES), ("imagenet_vid_val.json", [[[], [[5, 5, 9, 9]]]])):
        path = coco_writer(root, boxes, json_name=name, file_names="rawframes", folders=("malignant", "benign"))
        data = json.load(open(path))
        for image in data["images"]:
            image["is_vid_train_frame"] = True
        json.dump(data, open(path, "w"))
        _two_categories(path)


def _two_categories(path):
    data = json.load(open(path))
    data["categories"] = TWO_CATEGORIES
    for ann in data["annotations"]:
        ann["category_id"] = 2  # malignant: both categories load as "lesion"
    json.dump(data, open(path, "w"))


def test_register_cva_bus_on_the_release_layout(tmp_path, coco_writer, clean_catalog):
    write_cva_bus(tmp_path, coco_writer)
    assert register_cva_bus(str(tmp_path)) == ["cva_bus_trainval", "cva_bus_test"]
    trainval, test = DatasetCatalog.get("cva_bus_trainval"), DatasetCatalog.get("cva_bus_test")
    assert [len(v["frames"]) for v in trainval] == [2, 3] and len(test) == 1
    assert trainval[1]["frames"][1]["file_name"] == str(tmp_path / "rawframes/malignant/video_01/000001.png")
    assert trainval[1]["frames"][1]["annotations"] == [
        {"bbox": [4.0, 4.0, 10.0, 10.0], "track_id": 0, "category_id": 0}
    ]


def test_register_buv_on_the_release_layout(tmp_path, coco_writer, clean_catalog):
    write_buv(tmp_path, coco_writer)
    assert register_buv(str(tmp_path)) == ["buv_train", "buv_val"]
    train, (val,) = DatasetCatalog.get("buv_train"), DatasetCatalog.get("buv_val")
    assert [v["video_name"] for v in train] == ["malignant/video_00", "benign/video_01"]
    assert val["frames"][1]["file_name"] == str(tmp_path / "rawframes/malignant/video_00/000001.png")
    assert val["frames"][1]["annotations"][0]["category_id"] == 0


def test_builtin_registration_covers_both_under_datasets_root(tmp_path, coco_writer, clean_catalog):
    write_cva_bus(tmp_path / "cva_bus", coco_writer)
    write_buv(tmp_path / "buv", coco_writer)
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.ROOT = str(tmp_path)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("buv_train",), ("cva_bus_test",)
    register_builtin_datasets(cfg)
    assert len(DatasetCatalog.get("buv_val")) == 1 and len(DatasetCatalog.get("cva_bus_trainval")) == 2
    assert not (tmp_path / "phantom_v60_f80_s256_seed0_t0.25").exists()  # no phantom generated
