"""A predictions.json that does not fit the format is an error naming the file and the entry."""

import json

import pytest

from usvid.data import DatasetFormatError
from usvid.evaluation import load_predictions_json

FRAME = {"frame_idx": 0, "boxes": [[1, 2, 3, 4]], "scores": [0.5]}


@pytest.mark.parametrize(
    "content, error, message",
    [
        ('{"videos": [{"video_id": 1, "frames": [', DatasetFormatError, r"malformed JSON at line 1, column \d+"),
        (
            {"videos": [{"video_id": 1, "frame": [FRAME]}]},
            ValueError,
            r"videos\[0\] needs a 'video_id' and a 'frames' list; it has \['frame', 'video_id'\]",
        ),
        ({"videos": []}, ValueError, "holds no frame predictions"),
        (
            {"videos": [{"video_id": 1, "frames": [FRAME, FRAME]}]},
            ValueError,
            r"frames\[1\]: a second prediction for frame_idx 0",
        ),
        (
            {"videos": [{"video_id": 1, "frames": [{"frame_idx": 0, "boxes": [[1, 2, 3, 4]]}]}]},
            ValueError,
            r"frames\[0\]: KeyError\('scores'\)",
        ),
    ],
)
def test_bad_predictions_files_are_explained(tmp_path, content, error, message):
    path = tmp_path / "predictions.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(error, match=message) as info:
        load_predictions_json(str(path))
    assert str(path) in str(info.value)


def test_a_missing_predictions_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"predictions file .*absent.json does not exist"):
        load_predictions_json(str(tmp_path / "absent.json"))
