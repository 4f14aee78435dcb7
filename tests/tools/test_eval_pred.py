"""tools/eval_pred.py on a trained run's saved predictions, as a user re-evaluates them."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_eval_pred_with_the_training_overrides_reproduces_the_run_s_test_metrics(trained_run, run_tiny, tmp_path):
    inference = os.path.join(trained_run, "inference", "phantom_test")
    # The run trained on a phantom described by its config and overrides: the same name its test set.
    predictions = os.path.join(inference, "predictions.json")
    run_tiny("eval_pred.py", "--pred", predictions, "--dataset", "phantom_test", "--output", tmp_path)
    original = json.load(open(os.path.join(inference, "metrics.json")))["lesion_detection"]
    again = json.load(open(tmp_path / "metrics.json"))["lesion_detection"]
    assert set(again) == set(original)
    for key, value in original.items():
        if key != "FPS":  # speed needs the model: NaN when re-evaluating
            assert (math.isnan(value) and math.isnan(again[key])) or again[key] == value, key
    assert math.isnan(again["FPS"])


def test_eval_pred_takes_one_ground_truth_source():
    """--dataset-json and --dataset together: argparse's usage error, exit code 2."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "eval_pred.py"),
            "--pred",
            "p.json",
            "--dataset-json",
            "test.json",
            "--dataset",
            "phantom_test",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
