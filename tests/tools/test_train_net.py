"""End to end on the tiny phantom: tools/train_net.py trains with evaluation and hard-negative
mining, --eval-only reproduces the final evaluation, --resume continues exactly, --num-gpus 2
runs two CPU processes, and plain_train_net.py writes the trainer's metrics.json keys."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def read_metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f]


def final_test_metrics(output_dir):
    with open(os.path.join(output_dir, "inference", "phantom_test", "metrics.json")) as f:
        return json.load(f)["lesion_detection"]


def model_weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_training_writes_checkpoints_metrics_evaluation_and_a_code_backup(trained_run):
    files = set(os.listdir(trained_run))
    assert {
        "model_0000004.pth",
        "model_0000009.pth",
        "model_final.pth",
        "last_checkpoint",
        "config.yaml",
        "log.txt",
    } <= files
    backup = [f for f in files if f.startswith("code_")]
    assert len(backup) == 1
    assert os.path.isfile(os.path.join(trained_run, backup[0], "tools", "train_net.py"))
    # The config and its _BASE_ chain (tiny.yaml -> ultradet.yaml -> ../Base-UltraDet.yaml), laid out
    # as in configs/ so that the copies load on their own.
    for config in ("phantom/tiny.yaml", "phantom/ultradet.yaml", "Base-UltraDet.yaml"):
        assert os.path.isfile(os.path.join(trained_run, backup[0], config))

    lines = read_metrics(trained_run)
    assert [line["iteration"] for line in lines] == sorted({line["iteration"] for line in lines})
    losses = [line["total_loss"] for line in lines if "total_loss" in line]
    assert losses and all(math.isfinite(v) for v in losses)
    evaluations = [line for line in lines if "lesion_detection/AP50" in line]
    # The periodic evaluation at iteration 4, and the final one after training.
    assert len(evaluations) == 2 and evaluations[0]["iteration"] == 4

    inference_dir = os.path.join(trained_run, "inference", "phantom_test")
    for name in ("predictions.json", "metrics.json", "per_video.csv", "precision_recall.png"):
        assert os.path.isfile(os.path.join(inference_dir, name)), name
    metrics = final_test_metrics(trained_run)
    assert metrics["num_videos"] == 2 and metrics["num_frames"] == 32
    assert 0.0 <= metrics["R@16"] <= 1.0 and metrics["FPS"] > 0
    # The final evaluation in metrics.json is the one written to inference/.
    assert evaluations[-1]["lesion_detection/R@16"] == pytest.approx(metrics["R@16"])


def test_hard_negative_mining_wrote_the_sampler_format_and_is_checkpointed(trained_run):
    mined = os.path.join(trained_run, "hard_negatives", "fp_0000004.json")
    with open(mined) as f:
        groups = json.load(f)
    assert [g["dataset"] for g in groups] == ["phantom_trainval"]
    assert all({"video_id", "frame_idx"} <= set(frame) for frame in groups[0]["frames"])
    hooks_state = torch.load(os.path.join(trained_run, "model_final.pth"), map_location="cpu", weights_only=False)[
        "trainer"
    ]["hooks"]
    assert hooks_state["RefreshDataloaderHook"] == {"latest_fp_json": "hard_negatives/fp_0000004.json"}


def test_eval_only_reproduces_the_final_evaluation(trained_run, eval_only):
    again, before = final_test_metrics(eval_only), final_test_metrics(trained_run)
    for key in ("AP50", "R@16", "FP80", "num_dets"):
        assert again[key] == pytest.approx(before[key], nan_ok=True), key


def run_failing_tool(*args, **env_overrides):
    """tools/train_net.py with ``args`` from the repository root, expected to fail."""
    repo = Path(__file__).resolve().parents[2]
    env = {name: value for name, value in os.environ.items() if name != "USVID_DEBUG"}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(repo), **env_overrides)
    result = subprocess.run(
        [sys.executable, str(repo / "tools" / "train_net.py"), *map(str, args)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode != 0, result.stdout[-2000:]
    return result


def test_eval_only_refuses_to_evaluate_without_trained_weights(tiny_opts, tmp_path, phantom_config):
    result = run_failing_tool("--config-file", phantom_config, "--eval-only", *tiny_opts, "OUTPUT_DIR", tmp_path)
    assert "needs trained weights: set MODEL.WEIGHTS" in result.stderr
    assert not (tmp_path / "inference").exists()  # no metrics of a random model


def test_a_mistake_in_the_input_ends_with_its_message_not_a_traceback(phantom_config, tmp_path):
    result = run_failing_tool("--config-file", phantom_config, "SOLVER.MAX_ITERS", 5, "OUTPUT_DIR", tmp_path)
    assert result.returncode == 2
    assert "error: Unknown config key SOLVER.MAX_ITERS" in result.stderr and "SOLVER.MAX_ITER" in result.stderr
    assert "Traceback" not in result.stderr
    debug = run_failing_tool(
        "--config-file", phantom_config, "SOLVER.MAX_ITERS", 5, "OUTPUT_DIR", tmp_path, USVID_DEBUG="1"
    )
    assert "Traceback" in debug.stderr and "ConfigKeyError" in debug.stderr


def test_resume_continues_exactly_where_the_checkpoint_left_off(trained_run, train_opts, tmp_path, run_tiny):
    # Rewind a copy of the run to its iteration-4 checkpoint (as if stopped there), then resume;
    # metrics.json keeps the lines written after it, which the resumed run must replace.
    resumed = tmp_path / "resumed"
    shutil.copytree(
        trained_run, resumed, ignore=shutil.ignore_patterns("model_final.pth", "model_0000009.pth", "inference")
    )
    (resumed / "last_checkpoint").write_text("model_0000004.pth")
    run_tiny("train_net.py", "--resume", opts=[*train_opts, "OUTPUT_DIR", resumed])

    original = model_weights(os.path.join(trained_run, "model_final.pth"))
    continued = model_weights(resumed / "model_final.pth")
    assert original.keys() == continued.keys()
    for name in original:
        torch.testing.assert_close(continued[name], original[name], rtol=0, atol=0, msg=name)

    # The same metrics.json lines, none duplicated, with the same values: losses smoothed over a
    # window that reaches back before the resume, learning rates and evaluation results. Only
    # wall-clock values differ.
    def without_wall_clock(lines):  # as JSON text, so that NaN equals NaN
        return json.dumps(
            [
                {k: v for k, v in line.items() if k not in ("time", "data_time") and not k.endswith("/FPS")}
                for line in lines
            ],
            sort_keys=True,
        )

    assert without_wall_clock(read_metrics(resumed)) == without_wall_clock(read_metrics(trained_run))


def test_two_cpu_processes_train_and_evaluate_every_video(tmp_path, run_tiny):
    run_tiny("train_net.py", "--num-gpus", 2, opts=["SOLVER.MAX_ITER", 4, "OUTPUT_DIR", tmp_path])
    assert os.path.isfile(tmp_path / "model_final.pth")
    metrics = final_test_metrics(tmp_path)
    assert metrics["num_videos"] == 2 and metrics["num_frames"] == 32  # both ranks' videos gathered
    assert any("total_loss" in line for line in read_metrics(tmp_path))


def test_plain_loop_writes_the_trainer_metric_keys(trained_run, tmp_path, run_tiny):
    run_tiny("plain_train_net.py", opts=["SOLVER.MAX_ITER", 10, "SOLVER.CHECKPOINT_PERIOD", 10, "OUTPUT_DIR", tmp_path])
    assert {"model_0000009.pth", "model_final.pth"} <= set(os.listdir(tmp_path))
    trainer_keys = set().union(*read_metrics(trained_run))
    plain_keys = set().union(*read_metrics(tmp_path))
    assert trainer_keys == plain_keys
    assert final_test_metrics(tmp_path)["num_frames"] == 32
