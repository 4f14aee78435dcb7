"""The one-line console summary (demo, predict): units, whole FP rates, and a NaN that says why."""

import math

from usvid.evaluation import format_headline_metrics


def test_headline_numbers_have_their_units_and_a_nan_says_why():
    metrics = {
        "AP50": 0.7453,
        "Pr80": math.nan,
        "FP80": 306.0,
        "FP70": 2.5,
        "FP90": math.nan,
        "R@16": 0.8376,
        "FPS": 57.6,
    }
    line = format_headline_metrics(metrics, ("AP50", "Pr80", "FP70", "FP80", "FP90", "R@16", "FPS", "COCO/AP"))
    assert line == (
        "AP50 0.745  Pr80 n/a (recall 0.8 never reached)  FP70 2.5 /min  FP80 306 /min  "
        "FP90 n/a (recall 0.9 never reached)  R@16 0.838  FPS 58  COCO/AP n/a"
    )
    assert format_headline_metrics({"FPS": math.nan}, ("FPS",)) == "FPS n/a (not measured)"
