import json
import logging
import math
import os

import pytest

from usvid.data import register_coco_video
from usvid.data.catalog import DatasetCatalog, MetadataCatalog
from usvid.data.datasets import DatasetFormatError, load_coco_video_json


def test_loads_video_dicts(tmp_path, coco_writer, clean_catalog):
    path = coco_writer(tmp_path, [[[[2, 3, 10, 5]], [], [[4, 4, 6, 6], [20, 10, 5, 5]]], [[], []]])
    videos = load_coco_video_json(path, str(tmp_path), "toy_coco")
    assert [v["video_id"] for v in videos] == [1, 2]
    first, negative = videos
    assert first["dataset"] == "toy_coco" and (first["height"], first["width"]) == (32, 48)
    assert first["video_name"] == "benign/video_00"
    assert first["video_folder"] == os.path.join(str(tmp_path), "rawframes/benign/video_00")
    assert [f["frame_idx"] for f in first["frames"]] == [0, 1, 2]
    assert first["frames"][0]["file_name"] == os.path.join(str(tmp_path), "rawframes/benign/video_00/000000.png")
    assert first["frames"][0]["annotations"] == [{"bbox": [2.0, 3.0, 12.0, 8.0], "track_id": 0, "category_id": 0}]
    assert first["frames"][1]["annotations"] == []
    assert [a["track_id"] for a in first["frames"][2]["annotations"]] == [0, 1]
    assert not first["is_negative"] and negative["is_negative"]
    meta = MetadataCatalog.get("toy_coco")
    assert meta.thing_classes == ["lesion"] and meta.json_file == path


def test_repairs_known_defects_with_one_warning(tmp_path, coco_writer, caplog):
    path = coco_writer(
        tmp_path,
        [
            [
                [[12, 10, -8, -4]],  # negative width/height: corners normalised
                [[40, 20, 20, 20]],  # sticks out of the 48x32 frame: clipped
                [[50, 5, 10, 10], [3, 3, 0, 5]],  # entirely outside, zero width: dropped
                [],  # no annotation: kept lesion-free
            ]
        ],
    )
    data = json.load(open(path))
    data["images"] = data["images"][::-1]  # frames out of order
    json.dump(data, open(path, "w"))
    with caplog.at_level(logging.WARNING):
        (video,) = load_coco_video_json(path, str(tmp_path))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    for expected in (
        "negative size boxes: 1",
        "clipped boxes: 2",
        "dropped empty boxes: 2",
        "unsorted videos: 1",
        "lesion free frames: 2",
        path,
    ):
        assert expected in message
    frames = video["frames"]
    assert [f["frame_idx"] for f in frames] == [0, 1, 2, 3]
    assert frames[0]["annotations"][0]["bbox"] == [4.0, 6.0, 12.0, 10.0]
    assert frames[1]["annotations"][0]["bbox"] == [40.0, 20.0, 48.0, 32.0]
    assert frames[2]["annotations"] == [] and frames[3]["annotations"] == []


def test_imagenet_vid_key_variants(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[[1, 1, 5, 5]], []]])
    data = json.load(open(path))
    del data["videos"], data["categories"]
    data["images"][0]["frame_index"] = data["images"][0].pop("frame_id")
    data["images"][1]["frame_idx"] = data["images"][1].pop("frame_id")
    for image in data["images"]:
        del image["height"], image["width"]
    data["videos"] = [{"id": 1, "height": 32, "width": 48}]
    data["annotations"][0]["track_id"] = data["annotations"][0].pop("instance_id")
    json.dump(data, open(path, "w"))
    (video,) = load_coco_video_json(path, str(tmp_path))
    assert [f["frame_idx"] for f in video["frames"]] == [0, 1]
    assert (video["height"], video["width"]) == (32, 48)
    assert video["frames"][0]["annotations"][0]["track_id"] == 0


def test_categories_are_contiguous_and_class_agnostic_merges_them(
    tmp_path, coco_writer, clean_catalog, caplog, monkeypatch
):
    path = coco_writer(
        tmp_path, [[[[1, 1, 5, 5]]]], categories=[{"id": 3, "name": "malignant"}, {"id": 1, "name": "benign"}]
    )
    data = json.load(open(path))
    data["annotations"][0]["category_id"] = 3
    json.dump(data, open(path, "w"))
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)  # setup_logger() turns it off
    caplog.set_level(logging.WARNING, logger="usvid.data")
    (video,) = load_coco_video_json(path, str(tmp_path), "toy_classes")
    assert video["frames"][0]["annotations"][0]["category_id"] == 1
    assert MetadataCatalog.get("toy_classes").thing_classes == ["benign", "malignant"]
    # The detectors would train on "benign" only while evaluation counts both: say so.
    assert "train on the first ('benign'" in caplog.text and "class_agnostic=True" in caplog.text
    caplog.clear()
    (video,) = load_coco_video_json(path, str(tmp_path), class_agnostic=True)
    assert video["frames"][0]["annotations"][0]["category_id"] == 0
    register_coco_video("toy_lesions", path, str(tmp_path))  # lesion detection: merged by default
    (video,) = DatasetCatalog.get("toy_lesions")
    assert video["frames"][0]["annotations"][0]["category_id"] == 0
    assert MetadataCatalog.get("toy_lesions").thing_classes == ["lesion"]
    assert caplog.text == ""


def _edit(path, change):
    data = json.load(open(path))
    change(data)
    json.dump(data, open(path, "w"))


def test_missing_frame_file_names_it_and_every_rule_tried(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[], []]])
    os.remove(os.path.join(tmp_path, "rawframes/benign/video_00/000001.png"))
    with pytest.raises(FileNotFoundError) as error:
        load_coco_video_json(path, str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{path}: frame files not found under image_root={tmp_path}")
    root = str(tmp_path)
    for line in (
        f"image_root/file_name: 1 of 2 frame file(s) do not exist, e.g. {root}/rawframes/benign/video_00/000001.png",
        f"image_root/rawframes/file_name: 2 of 2 frame file(s) do not exist, e.g. "
        f"{root}/rawframes/rawframes/benign/video_00/000000.png",
        f"image_root/rawframes/<video name>/<basename(file_name)>: 1 of 2 frame file(s) do "
        f"not exist, e.g. {root}/rawframes/benign/video_00/000001.png",
    ):
        assert line in message


def test_video_without_images(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[]]])
    _edit(path, lambda d: d["videos"].append({"id": 9, "name": "benign/empty"}))
    with pytest.raises(DatasetFormatError, match=r"trainval.json: video id=9 \(name='benign/empty'\) has no images"):
        load_coco_video_json(path, str(tmp_path))


def test_image_ids_restarting_in_every_video_are_an_error_not_moved_boxes(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[[1, 1, 5, 5]], []], [[], [[2, 2, 6, 6]]]])

    def restart_ids_per_video(data):
        for image in data["images"]:
            image["id"] = image["frame_id"]  # 0, 1 in video 1, again 0, 1 in video 2

    _edit(path, restart_ids_per_video)
    with pytest.raises(
        DatasetFormatError, match=r"images\[2\] \(id=0\): image id 0 is already used by images\[0\] \(video_id 1\)"
    ):
        load_coco_video_json(path, str(tmp_path))


def test_a_video_listed_twice_is_an_error(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[]]])
    _edit(path, lambda d: d["videos"].append(dict(d["videos"][0])))
    with pytest.raises(DatasetFormatError, match=r"videos\[1\]: video id 1 is listed twice"):
        load_coco_video_json(path, str(tmp_path))


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(DatasetFormatError, match=r"broken.json: malformed JSON at line 2, column 12"):
        load_coco_video_json(str(path), str(tmp_path))


@pytest.mark.parametrize(
    "entry, key, pattern",
    [
        ("images", "video_id", r"images\[0\] \(id=1\): missing required key\(s\) \['video_id'\]"),
        ("images", "frame_id", r"images\[0\] \(id=1\): missing the frame index"),
        ("annotations", "bbox", r"annotations\[0\] \(id=1\): missing required key\(s\) \['bbox'\]"),
        (None, "annotations", r"missing required key\(s\) \['annotations'\]"),
    ],
)
def test_missing_keys_name_the_entry(tmp_path, coco_writer, entry, key, pattern):
    path = coco_writer(tmp_path, [[[[1, 1, 5, 5]]]])
    _edit(path, lambda d: (d[entry][0] if entry else d).pop(key))
    with pytest.raises(DatasetFormatError, match=pattern):
        load_coco_video_json(path, str(tmp_path))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_boxes_are_errors(tmp_path, coco_writer, bad):
    path = coco_writer(tmp_path, [[[[1, 1, 5, 5]]]])
    text = open(path).read().replace("[1, 1, 5, 5]", f"[1, {'NaN' if math.isnan(bad) else 'Infinity'}, 5, 5]")
    open(path, "w").write(text)
    with pytest.raises(DatasetFormatError, match=r"annotations\[0\] \(id=1\): box .* NaN or infinite"):
        load_coco_video_json(path, str(tmp_path))
