"""generate_phantom_dataset end to end on a tiny dataset: layout, JSON schema, determinism
across worker counts, split, metadata, argument errors and the CLI."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from usvid.data.phantom import PHANTOM_VERSION, generate_phantom_dataset
from usvid.data.phantom.__main__ import main

TINY = dict(num_videos=4, frames_per_video=12, image_size=96, seed=3, test_fraction=0.25)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The tiny dataset generated in-process with one worker."""
    base = tmp_path_factory.mktemp("phantom")
    one = generate_phantom_dataset(base / "one", num_workers=1, progress=False, **TINY)
    return base, one


def test_byte_identical_with_one_and_two_workers(datasets, tmp_path):
    base, _one = datasets
    generate_phantom_dataset(tmp_path / "two", num_workers=2, progress=False, **TINY)
    one, two = _digest(base / "one"), _digest(tmp_path / "two")
    assert one == two
    assert len(one) == 4 * 12 + 3


def test_different_seed_gives_different_frames(datasets, tmp_path):
    base, _one = datasets
    generate_phantom_dataset(tmp_path / "other", num_workers=1, progress=False, **{**TINY, "seed": 4, "num_videos": 1})
    first = sorted((tmp_path / "other").rglob("000000.png"))[0]
    counterpart = sorted((base / "one" / "rawframes").rglob("000000.png"))
    assert all(first.read_bytes() != p.read_bytes() for p in counterpart)


def test_json_schema_paths_and_labels(datasets):
    base, summary = datasets
    root = base / "one"
    trainval = json.loads(Path(summary["trainval_json"]).read_text())
    test = json.loads(Path(summary["test_json"]).read_text())
    assert summary["num_trainval_videos"] == 3 and summary["num_test_videos"] == 1
    all_videos = trainval["videos"] + test["videos"]
    assert {v["category"] for v in all_videos} == {"benign", "malignant", "normal"}
    image_ids, annotation_ids = set(), set()
    for split in (trainval, test):
        assert set(split) == {"videos", "images", "annotations", "categories"}
        assert split["categories"] == [{"id": 1, "name": "lesion"}]
        videos = {v["id"]: v for v in split["videos"]}
        for video in split["videos"]:
            assert {"id", "name", "category"} <= set(video)
            assert video["name"] == f"{video['category']}/phantom_{video['id'] - 1:04d}"
        images = {}
        for image in split["images"]:
            assert set(image) == {"id", "video_id", "frame_id", "file_name", "height", "width"}
            video = videos[image["video_id"]]
            assert (
                image["file_name"] == f"{video['name']}/{image['frame_id']:06d}.png"
            )  # relative to rawframes, as released
            frame = cv2.imread(str(root / "rawframes" / image["file_name"]), cv2.IMREAD_UNCHANGED)
            assert frame.shape == (image["height"], image["width"]) == (96, 96)
            images[image["id"]] = image
        image_ids |= set(images)
        for ann in split["annotations"]:
            assert set(ann) == {"id", "image_id", "video_id", "bbox", "area", "instance_id", "category_id", "iscrowd"}
            image = images[ann["image_id"]]
            assert ann["video_id"] == image["video_id"]
            assert videos[ann["video_id"]]["category"] != "normal"  # lesion-free videos
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= image["width"] and y + h <= image["height"]
            assert ann["area"] == w * h and ann["category_id"] == 1 and ann["iscrowd"] == 0
            annotation_ids.add(ann["id"])
    assert len(image_ids) == summary["num_images"] == 48
    assert len(annotation_ids) == summary["num_annotations"] > 0
    meta = json.loads((root / "phantom_meta.json").read_text())
    assert meta["version"] == PHANTOM_VERSION and meta["seed"] == 3
    assert meta["image_size"] == [96, 96] and meta["frames_per_video"] == 12


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(num_videos=0), "num_videos"),
        (dict(frames_per_video=1), "frames_per_video"),
        (dict(image_size=(32, 96)), "image_size"),
        (dict(image_size="big"), "image_size"),
        (dict(test_fraction=1.5), "test_fraction"),
        (dict(num_workers=0), "num_workers"),
    ],
)
def test_bad_arguments_are_named(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        generate_phantom_dataset(tmp_path / "bad", progress=False, **bad)


def test_refuses_to_mix_with_existing_frames(datasets):
    base, _one = datasets
    with pytest.raises(FileExistsError, match="rawframes"):
        generate_phantom_dataset(base / "one", progress=False, **TINY)


def test_cli_writes_a_dataset(tmp_path):
    """The real entry point, in a fresh interpreter: python -m usvid.data.phantom."""
    out = tmp_path / "cli"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "usvid.data.phantom",
            "--out",
            str(out),
            "--num-videos",
            "1",
            "--frames",
            "2",
            "--size",
            "64x72",
            "--workers",
            "1",
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_images"] == 2
    assert json.loads((out / "phantom_meta.json").read_text())["image_size"] == [64, 72]
    frame = next((out / "rawframes").rglob("000001.png"))
    assert cv2.imread(str(frame), cv2.IMREAD_UNCHANGED).shape == (64, 72)


def test_cli_rejects_a_bad_size(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "bad"), "--size", "axb"])
    assert exit_info.value.code != 0 and "--size" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "bad"), "--num-videos", "0", "--quiet"]) == 2
    assert "num_videos" in capsys.readouterr().err
