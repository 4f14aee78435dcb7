"""The drawing shared by tools/visualize.py and tools/predict.py: colours, the MP4 writer and the
contact sheet with its colour legend."""

import av
import numpy as np

from usvid.evaluation.drawing import (
    FP_COLOR,
    GT_COLOR,
    HEADER_HEIGHT,
    LEGEND_HEIGHT,
    contact_sheet,
    legend_strip,
    render_frame,
    score_color,
    write_mp4,
)

LESION = [10.0, 10.0, 30.0, 30.0]
DECOY = [40.0, 40.0, 56.0, 56.0]


def test_render_frame_draws_ground_truth_green_and_false_alarms_red():
    image = np.full((64, 64), 128, np.uint8)
    detections = np.array([LESION + [0.9], DECOY + [0.8]])
    frame = render_frame(
        image, np.array([LESION]), detections, np.array([False, True]), "caption", threshold=0.5, scale=2.0
    )
    assert frame.shape == (HEADER_HEIGHT + 128, 128, 3)
    body = frame[HEADER_HEIGHT:]
    # The false alarm's left edge (x = 80 at scale 2) is red; the lesion box is not red.
    assert tuple(body[100, 80]) == FP_COLOR
    assert tuple(body[40, 20]) != FP_COLOR


def test_mp4_has_every_frame_and_contact_sheet_a_bounded_size(tmp_path):
    frames = [np.full((41, 63, 3), 10 * i, np.uint8) for i in range(7)]  # odd sides are padded
    path = write_mp4(frames, str(tmp_path / "clip.mp4"), fps=30)
    with av.open(path) as container:
        assert sum(1 for _ in container.decode(video=0)) == 7
    sheet = contact_sheet([np.zeros((100, 640, 3), np.uint8)] * 30, columns=6, max_tiles=24)
    assert sheet.shape[1] == 6 * 320 + 5 * 2 and sheet.shape[0] == 4 * 50 + 3 * 2  # 2-pixel gaps between tiles


def _has(image, colour):
    return bool((image == np.array(colour, np.uint8)).all(axis=-1).any())


def test_contact_sheet_legend_shows_every_colour_drawn():
    sheet = contact_sheet([np.zeros((100, 640, 3), np.uint8)] * 6, columns=3, threshold=0.4)
    assert sheet.shape == (2 * 50 + 2 + LEGEND_HEIGHT, 3 * 320 + 2 * 2, 3)
    legend = sheet[-LEGEND_HEIGHT:]
    for colour in (GT_COLOR, FP_COLOR, score_color(0.4, 0.4), score_color(1.0, 0.4)):
        assert _has(legend, colour), colour
    # Without ground truth (a new scan) the legend names only what the picture can show.
    bare = legend_strip(400, 0.4, ground_truth=False, false_positives=False)
    assert not _has(bare, GT_COLOR) and not _has(bare, FP_COLOR) and _has(bare, score_color(1.0, 0.4))
