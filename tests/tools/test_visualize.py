"""tools/visualize.py draws what the metric sees (GT green, FP sequences red) and writes a
decodable MP4 and a contact sheet, from the CLI on a real run's predictions.json."""

import json
import os

import av
import cv2
import numpy as np

from usvid.app import visualization

LESION = [10.0, 10.0, 30.0, 30.0]
DECOY = [40.0, 40.0, 56.0, 56.0]


def test_render_frame_draws_ground_truth_green_and_false_alarms_red():
    image = np.full((64, 64), 128, np.uint8)
    detections = np.array([LESION + [0.9], DECOY + [0.8]])
    frame = visualization.render_frame(
        image, np.array([LESION]), detections, np.array([False, True]), "caption", threshold=0.5, scale=2.0
    )
    assert frame.shape == (visualization.HEADER_HEIGHT + 128, 128, 3)
    body = frame[visualization.HEADER_HEIGHT :]
    # The false alarm's left edge (x = 80 at scale 2) is red; the lesion box is not red.
    assert tuple(body[100, 80]) == visualization.FP_COLOR
    assert tuple(body[40, 20]) != visualization.FP_COLOR


def test_false_positive_flags_follow_the_metric():
    # A decoy every 6th frame is isolated, hence its own false-positive sequence; lesion boxes
    # are correct.
    ground_truth = [np.array([LESION])] * 12
    detections = [np.array([LESION + [0.5]] + ([DECOY + [0.9]] if i % 6 == 0 else [])) for i in range(12)]
    flags = visualization.false_positive_flags(detections, ground_truth, threshold=0.3)
    assert [f.tolist() for f in flags[:2]] == [[False, True], [False]]
    assert sum(int(f.sum()) for f in flags) == 2


def test_mp4_has_every_frame_and_contact_sheet_a_bounded_size(tmp_path):
    frames = [np.full((41, 63, 3), 10 * i, np.uint8) for i in range(7)]  # odd sides are padded
    path = visualization.write_mp4(frames, str(tmp_path / "clip.mp4"), fps=30)
    with av.open(path) as container:
        assert sum(1 for _ in container.decode(video=0)) == 7
    sheet = visualization.contact_sheet([np.zeros((100, 640, 3), np.uint8)] * 30, columns=6, max_tiles=24)
    assert sheet.shape[1] == 6 * 320 + 5 * 2 and sheet.shape[0] == 4 * 50 + 3 * 2  # 2-pixel gaps between tiles


def test_cli_renders_a_test_video_of_a_trained_run(trained_run, tiny_opts, run_tool, phantom_config, tmp_path):
    predictions = os.path.join(trained_run, "inference", "phantom_test", "predictions.json")
    result = run_tool(
        "visualize.py",
        "--predictions",
        predictions,
        "--config-file",
        phantom_config,
        "--score-threshold",
        "0.0",
        "--output",
        tmp_path,
        *tiny_opts,
    )
    (mp4,) = [f for f in os.listdir(tmp_path) if f.endswith(".mp4")]
    contact = cv2.imread(str(tmp_path / mp4.replace(".mp4", "_contact.png")))
    assert contact is not None and contact.shape[2] == 3
    with open(predictions) as f:
        video = next(v for v in json.load(f)["videos"] if f"{v['video_id']}.mp4" == mp4)
    with av.open(str(tmp_path / mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(video["frames"]) == 16
    assert "wrote" in result.stdout
