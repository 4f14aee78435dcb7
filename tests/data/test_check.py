"""usvid.data.check on real files: the frame problems training would otherwise meet late."""

import cv2
import numpy as np
import pytest

from usvid.data.check import check_dataset, check_frame_file, video_summary_rows
from usvid.data.datasets import load_coco_video_json


def _png(path, height=32, width=48):
    cv2.imwrite(str(path), np.full((height, width), 90, np.uint8))
    return str(path)


def test_a_good_frame_has_no_problem(tmp_path):
    assert check_frame_file(_png(tmp_path / "a.png"), 48, 32) == ""


def test_frame_problems_are_named(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = _png(tmp_path / "truncated.png", 64, 64)
    data = open(truncated, "rb").read()
    open(truncated, "wb").write(data[: len(data) // 2])
    text = tmp_path / "text.png"
    text.write_text("not an image")
    assert check_frame_file(str(empty), 48, 32) == "zero-byte file"
    assert check_frame_file(truncated, 64, 64).startswith("corrupt or not an image")
    assert check_frame_file(str(text), 48, 32).startswith("corrupt or not an image (UnidentifiedImageError")
    assert check_frame_file(_png(tmp_path / "big.png", 40, 50), 48, 32) == "size 50x40, the annotations say 48x32"
    assert check_frame_file(str(tmp_path / "nowhere.png"), 48, 32) == "missing"


def test_check_dataset_reports_every_video_and_every_bad_frame(tmp_path, coco_writer):
    path = coco_writer(tmp_path, [[[[2, 3, 10, 5]], [[1, 1, 4, 4], [20, 10, 6, 6]], []], [[], []]])
    videos = load_coco_video_json(path, str(tmp_path))
    bad = videos[1]["frames"][1]["file_name"]
    open(bad, "wb").write(b"")
    plot = tmp_path / "out" / "boxes.png"
    report, problems = check_dataset(videos, "toy", str(plot))
    assert [(p.video_id, p.frame_idx, p.problem) for p in problems] == [(2, 1, "zero-byte file")]
    assert f"video 2 frame 1: {bad}: zero-byte file" in report
    assert "toy: 2 videos, 5 frames, 3 lesion boxes" in report and "60.0 % of frames lesion-free" in report
    assert cv2.imread(str(plot)).shape[:2] == (400, 960)
    rows = video_summary_rows(videos, problems)
    assert [(r["video"], r["frames"], r["lesion frames"], r["boxes"], r["lesions"], r["bad frames"]) for r in rows] == [
        ("benign/video_00", 3, 2, 3, 2, 0),
        ("benign/video_01", 2, 0, 0, 0, 1),
    ]
    assert rows[0]["median box side"] == pytest.approx(6.0) and rows[1]["median box side"] == "-"
