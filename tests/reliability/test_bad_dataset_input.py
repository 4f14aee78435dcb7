"""Fuzzing the dataset loaders (COCO-video JSON and the CSV menu): a broken annotation file gives
one clear error naming the file (DatasetFormatError / FileNotFoundError), or loads with its
repairable defects repaired -- never a bare TypeError/KeyError from deep inside, never a box that
is NaN, outside the frame or empty."""

import copy
import json
import math
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usvid.data.datasets.coco_video import load_coco_video_json
from usvid.data.datasets.ultrasound_menu import MENU_COLUMNS, load_ultrasound_menu
from usvid.data.datasets.validation import DatasetFormatError

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EXPECTED_ERRORS = (DatasetFormatError, FileNotFoundError)
HEIGHT, WIDTH = 24, 32

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _write_frame(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((HEIGHT, WIDTH), 90, np.uint8))


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    """Two videos of three frames each on disk, and their valid COCO-video annotation."""
    root = tmp_path_factory.mktemp("coco")
    images, annotations = [], []
    for video_id in (1, 2):
        for frame_id in range(3):
            file_name = f"rawframes/v{video_id}/{frame_id:06d}.png"
            _write_frame(str(root / file_name))
            image_id = video_id * 10 + frame_id
            images.append(
                {
                    "id": image_id,
                    "video_id": video_id,
                    "frame_id": frame_id,
                    "file_name": file_name,
                    "height": HEIGHT,
                    "width": WIDTH,
                }
            )
            annotations.append(
                {
                    "id": image_id,
                    "image_id": image_id,
                    "video_id": video_id,
                    "bbox": [4.0, 3.0, 10.0, 8.0],
                    "instance_id": 1,
                    "category_id": 1,
                }
            )
    data = {
        "videos": [{"id": 1, "name": "v1"}, {"id": 2, "name": "v2"}],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "lesion"}],
    }
    return root, data


def _paths(node, prefix=()):
    """Every (path, value) inside a JSON tree, so a mutation can target any entry."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _mutate(data, path, action, junk):
    data = copy.deepcopy(data)
    if not path:
        return junk
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return data


def _assert_sane(videos):
    for video in videos:
        for frame in video["frames"]:
            for ann in frame["annotations"]:
                x1, y1, x2, y2 = ann["bbox"]
                assert all(math.isfinite(v) for v in ann["bbox"]), ann
                assert 0 <= x1 < x2 <= video["width"] and 0 <= y1 < y2 <= video["height"], ann


def _load_or_explain(json_path, image_root):
    try:
        videos = load_coco_video_json(str(json_path), str(image_root), "fuzz")
    except EXPECTED_ERRORS as err:
        assert os.path.basename(str(json_path)) in str(err), f"error does not name the file: {err!r}"
        return None
    _assert_sane(videos)
    return videos


@FUZZ
@given(data=st.data(), action=st.sampled_from(["replace", "delete"]), junk=JUNK)
def test_any_single_corruption_of_a_coco_file_is_explained_or_repaired(coco_root, tmp_path, data, action, junk):
    root, valid = coco_root
    path = data.draw(st.sampled_from(list(_paths(valid))))
    if action == "delete" and not path:
        return
    json_path = tmp_path / "trainval.json"
    json_path.write_text(json.dumps(_mutate(valid, path, action, junk), allow_nan=True))
    _load_or_explain(json_path, root)


@FUZZ
@given(content=st.binary(max_size=120))
def test_binary_garbage_coco_file(coco_root, tmp_path, content):
    json_path = tmp_path / "garbage.json"
    json_path.write_bytes(content)
    _load_or_explain(json_path, coco_root[0])


@pytest.mark.parametrize("bbox", [[float("nan"), 1, 2, 2], [1, 1, float("inf"), 2], [1, 1, "2", 2]])
def test_non_finite_or_non_numeric_box_is_an_error_naming_the_annotation(coco_root, tmp_path, bbox):
    root, valid = coco_root
    data = copy.deepcopy(valid)
    data["annotations"][2]["bbox"] = bbox
    json_path = tmp_path / "test.json"
    json_path.write_text(json.dumps(data, allow_nan=True))
    with pytest.raises(DatasetFormatError) as err:
        load_coco_video_json(str(json_path), str(root), "fuzz")
    assert "test.json" in str(err.value) and "annotations[2]" in str(err.value)


def test_empty_file_is_an_error_naming_it(coco_root, tmp_path):
    json_path = tmp_path / "empty.json"
    json_path.write_text("")
    with pytest.raises(DatasetFormatError, match="empty.json"):
        load_coco_video_json(str(json_path), str(coco_root[0]), "fuzz")


# ------------------------------------------------------------------------------- CSV menu


@pytest.fixture(scope="module")
def menu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("menu")
    folder = root / "hospA" / "vid0"
    for i in range(3):
        _write_frame(str(folder / f"{i}.jpg"))
    (folder / "info.json").write_text(
        json.dumps({"num_frames": 3, "cropped_shape": [HEIGHT, WIDTH], "static_frames": [], "empty_flag": False})
    )
    anno = {"frame_anno": [{"box": [{"xtl": 2, "ytl": 2, "xbr": 12, "ybr": 10, "lesion_index": 0}]} for _ in range(3)]}
    (root / "hospA" / "vid0.json").write_text(json.dumps(anno))
    row = {
        "pkl_file": "hospA/vid0.pkl",
        "jpg_folder": "hospA/vid0",
        "neg": "0",
        "video_path": "v.mp4",
        "hospital": "hospA",
        "anno_format": "pkl",
        "db_key": "20210301",
        "device": "devX",
    }
    return root, row, anno


def _write_menu(path, rows):
    lines = [",".join(MENU_COLUMNS)] + [",".join(str(r.get(c, "")) for c in MENU_COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")


@FUZZ
@given(column=st.sampled_from(MENU_COLUMNS), value=st.text(alphabet="ab01./\\-_ ", max_size=8))
def test_any_menu_cell_corruption_is_explained(menu_root, tmp_path, column, value):
    root, row, _ = menu_root
    menu = tmp_path / "breast.csv"
    _write_menu(menu, [dict(row, **{column: value})])
    try:
        videos = load_ultrasound_menu(str(menu), str(root), "breast_hospA@20210301")
    except EXPECTED_ERRORS as err:
        assert str(err), err
        return
    _assert_sane(videos)


@FUZZ
@given(data=st.data(), action=st.sampled_from(["replace", "delete"]), junk=JUNK)
def test_any_corruption_of_a_menu_annotation_file_is_explained(menu_root, tmp_path, data, action, junk):
    root, row, anno = menu_root
    path = data.draw(st.sampled_from(list(_paths(anno))))
    if action == "delete" and not path:
        return
    anno_file = tmp_path / "anno.json"
    anno_file.write_text(json.dumps(_mutate(anno, path, action, junk), allow_nan=True))
    menu = tmp_path / "breast.csv"
    _write_menu(menu, [dict(row, pkl_file=str(anno_file))])
    try:
        videos = load_ultrasound_menu(str(menu), str(root), "breast_hospA@20210301")
    except EXPECTED_ERRORS as err:
        assert "anno.json" in str(err) or "breast.csv" in str(err), f"error names no file: {err!r}"
        return
    _assert_sane(videos)


def test_a_menu_saved_by_excel_with_a_byte_order_mark_loads(menu_root, tmp_path):
    root, row, _ = menu_root
    menu = tmp_path / "breast.csv"
    _write_menu(menu, [row])
    menu.write_bytes(b"\xef\xbb\xbf" + menu.read_bytes())
    (video,) = load_ultrasound_menu(str(menu), str(root), "breast_hospA@20210301")
    assert len(video["frames"]) == 3


def test_binary_garbage_menu_is_an_error(menu_root, tmp_path):
    menu = tmp_path / "breast.csv"
    menu.write_bytes(b"\x00\xff\xfe garbage \x80\x81")
    with pytest.raises(EXPECTED_ERRORS) as err:
        load_ultrasound_menu(str(menu), str(menu_root[0]), "x")
    assert "breast.csv" in str(err.value)
