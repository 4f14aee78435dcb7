"""Two CPU processes (gloo): each runs streaming inference on its share of the videos, the
evaluator gathers every frame on rank 0, and the numbers equal a one-process evaluation."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from usvid.evaluation import UltrasoundVideoEvaluator, inference_on_video_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
PIPELINE_TEST = os.path.join(HERE, "test_evaluation_pipeline.py")

SCRIPT = """
import importlib.util, json, os, sys
from usvid.engine.launch import launch

def main(pipeline_test, frames_root, output_dir):
    spec = importlib.util.spec_from_file_location("pipeline", pipeline_test)
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    from usvid.data import DatasetCatalog
    from usvid.evaluation import UltrasoundVideoEvaluator, inference_on_video_dataset
    from usvid.utils import comm
    videos = pipeline.fixture_videos(frames_root, write_frames=False)
    DatasetCatalog.register("two_ranks", lambda: videos)
    loader = pipeline.frame_loader("two_ranks")
    model = pipeline.BrightSpotDetector()
    results = inference_on_video_dataset(model, loader, UltrasoundVideoEvaluator("two_ranks", output_dir))
    with open(os.path.join(output_dir, f"rank{comm.get_rank()}.json"), "w") as f:
        json.dump({"frames": len(loader), "videos_seen": sorted({e for e in model.events if e != "reset"}, key=str),
                   "results": results}, f)

if __name__ == "__main__":
    launch(main, 2, dist_url="auto", args=tuple(sys.argv[1:]))
"""


@pytest.mark.slow
def test_two_processes_gather_every_frame_and_match_one_process(tmp_path):
    pipeline = _load_pipeline_module()
    videos = pipeline.fixture_videos(str(tmp_path / "frames"))
    output_dir = tmp_path / "two_ranks"
    output_dir.mkdir()
    script = tmp_path / "evaluate_two_ranks.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO_ROOT, MPLBACKEND="Agg")
    completed = subprocess.run(
        [sys.executable, str(script), PIPELINE_TEST, str(tmp_path / "frames"), str(output_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0 = json.loads((output_dir / "rank0.json").read_text())
    rank1 = json.loads((output_dir / "rank1.json").read_text())
    # Each rank streamed one whole video; only rank 0 reports, over both.
    assert rank0["frames"] == rank1["frames"] == 6
    assert sorted(rank0["videos_seen"] + rank1["videos_seen"], key=str) == [0, "b"]
    assert rank1["results"] == {}
    two_ranks = rank0["results"]["lesion_detection"]
    assert two_ranks["num_frames"] == 12.0 and two_ranks["FPS"] > 0

    from usvid.data import DatasetCatalog

    DatasetCatalog.register("one_rank", lambda: videos)
    try:
        one_rank = inference_on_video_dataset(
            pipeline.BrightSpotDetector(), pipeline.frame_loader("one_rank"), UltrasoundVideoEvaluator("one_rank")
        )["lesion_detection"]
    finally:
        DatasetCatalog.remove("one_rank")
    for key, value in one_rank.items():
        if key != "FPS":
            assert two_ranks[key] == pytest.approx(value, nan_ok=True), key
    assert (output_dir / "predictions.json").exists()


def _load_pipeline_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluation_pipeline_fixture", PIPELINE_TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
