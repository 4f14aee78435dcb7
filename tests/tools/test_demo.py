"""`make demo` (tools/demo.py) on the tiny phantom: trains, evaluates, renders a test video and
prints where everything is."""

import os
import re

from usvid.app import demo


def test_demo_runs_the_whole_flow_and_says_where_the_results_are(run_tiny, tmp_path):
    result = run_tiny("demo.py", "--max-iter", 4, opts=["OUTPUT_DIR", tmp_path])
    summary = result.stdout[result.stdout.index("usvid demo finished") :]
    for line_start, path in [
        ("trained weights", tmp_path / "model_final.pth"),
        ("test metrics", tmp_path / "inference" / "phantom_test" / "metrics.json"),
    ]:
        assert f"{line_start}" in summary and str(path) in summary
        assert os.path.isfile(path)
    visualization = os.listdir(tmp_path / "visualization")
    assert any(f.endswith(".mp4") for f in visualization) and any(f.endswith("_contact.png") for f in visualization)
    # FP80 with its unit, or why there is none (4 iterations rarely reach recall 0.8).
    assert re.search(r"AP50 \d\.\d{3}  Pr80 .*  FP80 (\d[\d.]* /min|n/a \(recall 0.8 never reached\))", summary)
    assert "Model:\n" in (tmp_path / "log.txt").read_text() and "Model:\n" not in result.stdout


def test_a_shorter_demo_lowers_the_learning_rate_at_the_same_fraction(phantom_config):
    # The shipped config lowers the rate at 3200 of 4000 iterations.
    assert demo.schedule_overrides(phantom_config, [], 100) == ["SOLVER.MAX_ITER", "100", "SOLVER.STEPS", "(80,)"]
    assert demo.schedule_overrides(phantom_config, ["SOLVER.STEPS", "(500, 900)"], 8000)[3] == "(1000, 1800)"
