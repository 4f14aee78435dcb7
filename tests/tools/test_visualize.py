"""tools/visualize.py draws what the metric sees (GT green, FP sequences red) and writes a
decodable MP4 and a contact sheet with its colour legend, from the CLI on a real run's
predictions.json (the drawing itself: tests/evaluation/test_drawing.py)."""

import json
import os

import av
import cv2
import numpy as np

from usvid.app import visualization
from usvid.evaluation.drawing import FP_COLOR, GT_COLOR, LEGEND_HEIGHT

LESION = [10.0, 10.0, 30.0, 30.0]
DECOY = [40.0, 40.0, 56.0, 56.0]


def test_false_positive_flags_follow_the_metric():
    # A decoy every 6th frame is isolated, hence its own false-positive sequence; lesion boxes
    # are correct.
    ground_truth = [np.array([LESION])] * 12
    detections = [np.array([LESION + [0.5]] + ([DECOY + [0.9]] if i % 6 == 0 else [])) for i in range(12)]
    flags = visualization.false_positive_flags(detections, ground_truth, threshold=0.3)
    assert [f.tolist() for f in flags[:2]] == [[False, True], [False]]
    assert sum(int(f.sum()) for f in flags) == 2


def test_cli_renders_a_test_video_of_a_trained_run(trained_run, run_tiny, tmp_path):
    predictions = os.path.join(trained_run, "inference", "phantom_test", "predictions.json")
    result = run_tiny("visualize.py", "--predictions", predictions, "--score-threshold", "0.0", "--output", tmp_path)
    (mp4,) = [f for f in os.listdir(tmp_path) if f.endswith(".mp4")]
    contact = cv2.imread(str(tmp_path / mp4.replace(".mp4", "_contact.png")))
    assert contact is not None and contact.shape[2] == 3
    legend = contact[-LEGEND_HEIGHT:]
    for colour in (GT_COLOR, FP_COLOR):
        assert (legend == np.array(colour, np.uint8)).all(axis=-1).any(), colour
    with open(predictions) as f:
        video = next(v for v in json.load(f)["videos"] if f"{v['video_id']}.mp4" == mp4)
    with av.open(str(tmp_path / mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(video["frames"]) == 16
    assert "wrote" in result.stdout
