import csv
import json
import logging
import os

import cv2
import numpy as np
import pytest

from usvid.data.catalog import DatasetCatalog, MetadataCatalog
from usvid.data.datasets import DatasetFormatError, register_ultrasound_menu

COLUMNS = ["pkl_file", "jpg_folder", "neg", "video_path", "hospital", "anno_format", "db_key", "device"]


def write_video(root, jpg_folder, num_frames, boxes=None, pkl_file="", static=(), empty=False, size=(24, 32)):
    """Frames + info.json (+ the annotation JSON, named like its .pkl when pkl_file ends in .pkl)."""
    folder = os.path.join(root, jpg_folder)
    os.makedirs(folder, exist_ok=True)
    for i in range(num_frames):
        cv2.imwrite(os.path.join(folder, f"{i}.jpg"), np.full(size, 10 * i, np.uint8))
    info = {"num_frames": num_frames, "cropped_shape": list(size), "static_frames": list(static), "empty_flag": empty}
    json.dump(info, open(os.path.join(folder, "info.json"), "w"))
    if pkl_file:
        json_path = os.path.join(root, os.path.splitext(pkl_file)[0] + ".json")
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        frame_anno = [
            {"box": [dict(zip(("xtl", "ytl", "xbr", "ybr", "lesion_index"), b)) for b in frame]} for frame in boxes
        ]
        json.dump({"frame_anno": frame_anno}, open(json_path, "w"))


def write_menu(root, rows, organ="breast"):
    with open(os.path.join(root, f"{organ}.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**dict.fromkeys(COLUMNS, ""), **row})


@pytest.fixture
def menu_root(tmp_path):
    root = str(tmp_path)
    write_video(
        root, "jpg/a1", 3, boxes=[[(1, 2, 9, 8, 0)], [], [(1, 2, 40, 8, 0), (5, 5, 5, 9, 1)]], pkl_file="anno/a1.pkl"
    )
    write_video(root, "jpg/a2", 4, boxes=[[], [(0, 0, 4, 4, 2)], [], []], pkl_file="anno/a2.json", static=[2, 3])
    write_video(root, "jpg/b1", 2)  # negative, no annotation file
    write_video(root, "jpg/b2", 2, empty=True)
    write_menu(
        root,
        [
            {
                "pkl_file": "anno/a1.pkl",
                "jpg_folder": "jpg/a1",
                "neg": "0",
                "hospital": "HospA",
                "anno_format": "pkl",
                "db_key": "20210301",
                "device": "Mindray",
                "video_path": "raw/a1.mp4",
            },
            {
                "pkl_file": "anno/a2.json",
                "jpg_folder": "jpg/a2",
                "neg": "0",
                "hospital": "HospA",
                "anno_format": "json",
                "db_key": "20220101",
                "device": "Mindray",
            },
            {"jpg_folder": "jpg/b1", "neg": "1", "hospital": "HospB", "db_key": "20210301", "device": "GE"},
            {"jpg_folder": "jpg/b2", "neg": "1", "hospital": "HospB", "db_key": "20210301"},
        ],
    )
    return root


def test_registers_hospital_device_and_all_names(menu_root, clean_catalog):
    names = register_ultrasound_menu(menu_root, "breast")
    assert set(names) == {
        "breast_HospA@20210301",
        "breast_HospA@Mindray",
        "breast_ALL@20210301",
        "breast_HospA@20220101",
        "breast_ALL@20220101",
        "breast_HospB@20210301",
        "breast_HospB@GE",
    }
    assert set(names) <= set(DatasetCatalog.list())
    assert [v["video_id"] for v in DatasetCatalog.get("breast_HospA@Mindray")] == ["jpg/a1", "jpg/a2"]
    assert [v["video_id"] for v in DatasetCatalog.get("breast_ALL@20210301")] == ["jpg/a1", "jpg/b1"]
    assert MetadataCatalog.get("breast_ALL@20210301").thing_classes == ["lesion"]
    assert register_ultrasound_menu(menu_root, "breast") == names  # registering again is fine


def test_video_dicts_boxes_static_and_empty(menu_root, clean_catalog, caplog):
    register_ultrasound_menu(menu_root, "breast")
    (a1,) = DatasetCatalog.get("breast_HospA@20210301")
    assert (a1["height"], a1["width"], a1["video_path"], a1["is_negative"]) == (24, 32, "raw/a1.mp4", False)
    assert a1["frames"][0] == {
        "file_name": os.path.join(menu_root, "jpg/a1", "0.jpg"),
        "frame_idx": 0,
        "annotations": [{"bbox": [1.0, 2.0, 9.0, 8.0], "track_id": 0, "category_id": 0}],
    }
    # frame 2: one box clipped to the 32 px width, one zero-width box dropped
    assert a1["frames"][2]["annotations"] == [{"bbox": [1.0, 2.0, 32.0, 8.0], "track_id": 0, "category_id": 0}]
    (a2,) = DatasetCatalog.get("breast_HospA@20220101")
    assert [f["frame_idx"] for f in a2["frames"]] == [0, 1]  # static frames 2, 3 left out
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        hosp_b = DatasetCatalog.get("breast_HospB@20210301")
    assert [v["video_id"] for v in hosp_b] == ["jpg/b1"] and hosp_b[0]["is_negative"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "empty videos: 1" in warning and "breast.csv" in warning


def test_errors_name_file_and_row(menu_root, clean_catalog):
    write_menu(menu_root, [{"jpg_folder": "jpg/a1", "neg": "0", "hospital": "H", "db_key": "1"}], organ="bad")
    register_ultrasound_menu(menu_root, "bad")
    with pytest.raises(DatasetFormatError, match=r"bad.csv: line 2 \(jpg_folder='jpg/a1'\): pkl_file is empty"):
        DatasetCatalog.get("bad_H@1")
    with open(os.path.join(menu_root, "cols.csv"), "w") as f:
        f.write("jpg_folder,neg\njpg/a1,0\n")
    with pytest.raises(DatasetFormatError, match=r"cols.csv: missing column\(s\) \['pkl_file'"):
        register_ultrasound_menu(menu_root, "cols")
    write_menu(
        menu_root, [{"pkl_file": "anno/a2.json", "jpg_folder": "jpg/a1", "hospital": "H", "db_key": "1"}], organ="short"
    )
    register_ultrasound_menu(menu_root, "short")
    with pytest.raises(DatasetFormatError, match=r"a2.json: frame_anno has 4 entries but info.json says num_frames=3"):
        DatasetCatalog.get("short_ALL@1")
