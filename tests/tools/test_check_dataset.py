"""tools/check_dataset.py as a user runs it: on a registered dataset and on a JSON file with a
corrupt frame."""

import json
import os
import shutil


def test_check_a_registered_dataset(run_tiny, tmp_path):
    result = run_tiny("check_dataset.py", "--dataset", "phantom_test", "--output", tmp_path)
    assert "\n| video " in result.stdout and "/phantom_00" in result.stdout
    assert "phantom_test: 2 videos, 32 frames" in result.stdout
    assert "all 32 frames readable, with the size the annotations give" in result.stdout
    assert os.path.getsize(tmp_path / "phantom_test_boxes.png") > 0


def test_a_corrupt_frame_is_listed_and_the_exit_code_is_1(tiny_phantom_root, run_tool, tmp_path):
    (source,) = [p for p in tiny_phantom_root.iterdir() if p.name.startswith("phantom_v")]
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    test_json = json.load(open(copy / "test.json"))
    broken = copy / "rawframes" / test_json["images"][3]["file_name"]
    broken.write_bytes(broken.read_bytes()[:100])
    result = run_tool("check_dataset.py", "--dataset-json", copy / "test.json", "--output", tmp_path, expect_code=1)
    assert (
        f"1 frame(s) with a problem:\n  video {test_json['images'][3]['video_id']} frame 3: {broken}: corrupt"
        in result.stdout
    )
