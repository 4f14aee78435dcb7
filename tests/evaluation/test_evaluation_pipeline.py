"""Streaming inference + UltrasoundVideoEvaluator end to end: frames written as PNG files, the real
test loader, a tiny detector that boxes the bright pixels, the files and plots of the report, and
usvid.app.reevaluate_predictions (tools/eval_pred.py) re-evaluating the saved predictions to the
same numbers."""

import csv
import json
import logging
import math
import os

import cv2
import numpy as np
import pytest
import torch

from usvid.app import GroundTruthSource, reevaluate_predictions
from usvid.config import add_ultrasound_config, get_cfg
from usvid.data import DatasetCatalog, build_video_detection_test_loader
from usvid.evaluation import (
    DatasetEvaluators,
    UltrasoundVideoEvaluator,
    evaluate_frame_predictions,
    inference_on_video_dataset,
    load_predictions_json,
    print_csv_format,
)
from usvid.structures import Boxes, Instances
from usvid.utils.events import EventStorage

SIZE = 32


def fixture_videos(root, write_frames=True):
    """Video 0: a bright 8x8 lesion moving right; video "b": the lesion in frames 0-3 only, then a
    bright decoy that is not a lesion in frames 4-5. Returns the video dicts (and writes the PNG
    frames under ``root`` unless ``write_frames`` is False: a spawned process only re-reads)."""
    videos = []
    layouts = {0: [("lesion", 4 + f) for f in range(6)], "b": [("lesion", 10)] * 4 + [("decoy", 20)] * 2}
    for video_id, frames in layouts.items():
        folder = os.path.join(root, str(video_id))
        os.makedirs(folder, exist_ok=True)
        frame_dicts = []
        for index, (kind, x) in enumerate(frames):
            file_name = os.path.join(folder, f"{index:04d}.png")
            if write_frames:
                image = np.zeros((SIZE, SIZE), dtype=np.uint8)
                image[8:16, x : x + 8] = 255
                cv2.imwrite(file_name, image)
            annotations = (
                [{"bbox": [x, 8.0, x + 8.0, 16.0], "track_id": 0, "category_id": 0}] if kind == "lesion" else []
            )
            frame_dicts.append({"file_name": file_name, "frame_idx": index * 2, "annotations": annotations})
        videos.append(
            {
                "video_id": video_id,
                "dataset": "fixture",
                "video_folder": folder,
                "height": SIZE,
                "width": SIZE,
                "is_negative": False,
                "frames": frame_dicts,
            }
        )
    return videos


class BrightSpotDetector(torch.nn.Module):
    """Boxes the pixels brighter than mid-grey (score 0.9), in original-frame pixels; records
    the order of reset() calls and frames so the test can check the streaming protocol."""

    def __init__(self, fail_at_call=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.events = []
        self.fail_at_call = fail_at_call

    def reset(self):
        self.events.append("reset")

    def forward(self, inputs):
        assert not self.training and not torch.is_grad_enabled()
        if self.fail_at_call is not None and len([e for e in self.events if e != "reset"]) == self.fail_at_call:
            raise RuntimeError("model failure")
        outputs = []
        for frame in inputs:
            self.events.append(frame["video_id"])
            image = frame["image"][0].float()
            ys, xs = torch.nonzero(image > 127, as_tuple=True)
            sx, sy = frame["width"] / image.shape[1], frame["height"] / image.shape[0]
            boxes = torch.tensor([[xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy]])
            instances = Instances((frame["height"], frame["width"]))
            instances.pred_boxes = Boxes(boxes * self.scale)
            instances.scores = torch.tensor([0.9])
            instances.pred_classes = torch.tensor([0])
            outputs.append({"instances": instances})
        return outputs


@pytest.fixture
def dataset(tmp_path):
    name = f"fixture_{tmp_path.name}"
    videos = fixture_videos(str(tmp_path / "frames"))
    DatasetCatalog.register(name, lambda: videos)
    yield name, videos
    DatasetCatalog.remove(name)


def frame_loader(name):
    cfg = add_ultrasound_config(get_cfg())
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.FIXED_AREA_TEST = SIZE * SIZE
    cfg.INPUT.SIZE_DIVISIBILITY = 1
    return build_video_detection_test_loader(cfg, name)


def test_streaming_inference_writes_the_report(dataset, tmp_path, caplog):
    name, videos = dataset
    output_dir = str(tmp_path / "inference" / name)
    model = BrightSpotDetector().train()
    # setup_logger() elsewhere in the session may stop "usvid" records from reaching the root
    # logger, so capture at the package's own logger.
    package_logger = logging.getLogger("usvid.evaluation")
    package_logger.addHandler(caplog.handler)
    try:
        with EventStorage(0) as storage, caplog.at_level("INFO", logger="usvid.evaluation"):
            results = inference_on_video_dataset(model, frame_loader(name), UltrasoundVideoEvaluator(name, output_dir))
            print_csv_format(results)
    finally:
        package_logger.removeHandler(caplog.handler)
    # The streaming protocol: reset before the first frame of each video, eval mode inside.
    assert model.events == ["reset"] + [0] * 6 + ["reset"] + ["b"] * 6
    assert model.training
    metrics = results["lesion_detection"]
    # 10 lesion boxes all found exactly (AP50 = 1), plus 2 decoy boxes on lesion-free frames,
    # ranked equal with the lesion boxes (score .9): pooled order is video 0's 6 TPs, then video
    # b's 4 TPs and 2 FPs -> precision 1 up to recall 1 (AP50 = 1, Pr80 = 1). thr80 = .9 keeps no
    # box (score > thr), so FP80 = 0.
    assert metrics["AP50"] == 1.0 and metrics["R@16"] == 1.0 and metrics["Pr80"] == 1.0
    assert metrics["FP80"] == 0.0 and metrics["COCO/AP50"] == pytest.approx(1.0)
    assert metrics["num_videos"] == 2.0 and metrics["num_frames"] == 12.0 and metrics["num_dets"] == 12.0
    assert math.isfinite(metrics["FPS"]) and metrics["FPS"] > 0
    # Files of the report.
    on_disk = json.load(open(os.path.join(output_dir, "metrics.json")))
    assert on_disk["lesion_detection"]["AP50"] == 1.0 and on_disk["dataset"] == name
    assert on_disk["score_thresholds"] == pytest.approx(
        {"R70": 0.9, "R80": 0.9, "R90": 0.9}
    )  # operating points (float32 scores)
    rows = list(csv.DictReader(open(os.path.join(output_dir, "per_video.csv"))))
    assert [row["video_id"] for row in rows] == ["0", "b"] and rows[1]["gt_boxes"] == "4"
    plots = ["precision_recall", "fp_per_minute_vs_recall", "per_video_recall"]
    for plot in plots:
        assert os.path.getsize(os.path.join(output_dir, f"{plot}.png")) > 1000
    assert sorted(image_name for image_name, _, _ in storage.images()) == sorted(f"{name}/{p}" for p in plots)
    _, saved = load_predictions_json(os.path.join(output_dir, "predictions.json"))
    assert set(saved) == {(v["video_id"], f["frame_idx"]) for v in videos for f in v["frames"]}
    # Logs: the readable table and detectron2's copy-paste lines.
    assert "AP50 (%)" in caplog.text and "copypaste: Task: lesion_detection" in caplog.text


def test_model_mode_is_restored_after_an_error(dataset):
    name, _ = dataset
    model = BrightSpotDetector(fail_at_call=3).train()
    with pytest.raises(RuntimeError, match="model failure"):
        inference_on_video_dataset(model, frame_loader(name), UltrasoundVideoEvaluator(name))
    assert model.training
    model = BrightSpotDetector(fail_at_call=3).eval()
    with pytest.raises(RuntimeError):
        inference_on_video_dataset(model, frame_loader(name), UltrasoundVideoEvaluator(name))
    assert not model.training


def test_any_evaluator_and_combined_evaluators(dataset, frame_counter):
    name, _ = dataset
    combined = DatasetEvaluators([UltrasoundVideoEvaluator(name), frame_counter()])
    results = inference_on_video_dataset(BrightSpotDetector(), frame_loader(name), combined)
    assert set(results) == {"lesion_detection", "frame_count"}
    assert results["frame_count"]["frames"] == 12
    assert results["frame_count"]["FPS"] == results["lesion_detection"]["FPS"] > 0


def test_two_evaluators_reporting_one_task_is_an_error(frame_counter):
    combined = DatasetEvaluators([frame_counter(), frame_counter()])
    combined.reset()
    combined.process([{"video_id": 0, "frame_idx": 0}], [{}])
    combined.set_inference_fps(10.0)
    with pytest.raises(KeyError, match="two evaluators both report 'frame_count'"):
        combined.evaluate()


def test_model_without_reset_is_refused(dataset, frame_counter):
    name, _ = dataset
    with pytest.raises(AttributeError, match="has no reset\\(\\) method"):
        inference_on_video_dataset(torch.nn.Linear(1, 1), frame_loader(name), frame_counter())


def test_partial_and_unknown_predictions_are_named(dataset):
    _, videos = dataset
    frame = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0, dtype=np.int64)}
    with pytest.raises(ValueError, match="video 0 has predictions for some frames but not for frame_idx 2"):
        with pytest.warns(RuntimeWarning, match="1 of 2 videos have no predictions"):
            evaluate_frame_predictions({(0, 0): frame}, videos, "fixture")
    with pytest.raises(ValueError, match="predictions for videos \\['zzz'\\] that dataset 'fixture' does not have"):
        evaluate_frame_predictions({("zzz", 0): frame}, videos, "fixture")
    # A video without any prediction is skipped with a warning (detectron2 evaluates what it got).
    only_b = {("b", f["frame_idx"]): frame for f in videos[1]["frames"]}
    with pytest.warns(RuntimeWarning, match="1 of 2 videos have no predictions"):
        results = evaluate_frame_predictions(only_b, videos, "fixture")
    assert results["lesion_detection"]["num_videos"] == 1.0 and math.isnan(results["lesion_detection"]["FPS"])


def test_eval_pred_tool_reproduces_the_metrics(dataset, tmp_path):
    name, videos = dataset
    first_dir = str(tmp_path / "first")
    results = inference_on_video_dataset(
        BrightSpotDetector(), frame_loader(name), UltrasoundVideoEvaluator(name, first_dir)
    )
    dataset_json = tmp_path / "test.json"
    json.dump(coco_video_json(videos, str(tmp_path / "frames")), open(dataset_json, "w"))
    second_dir = tmp_path / "second"
    reevaluate_predictions(
        os.path.join(first_dir, "predictions.json"),
        GroundTruthSource(dataset_json=str(dataset_json), image_root=str(tmp_path / "frames")),
        output_dir=str(second_dir),
    )
    again = json.load(open(second_dir / "metrics.json"))["lesion_detection"]
    for key, value in results["lesion_detection"].items():
        if key != "FPS":  # speed needs the model: NaN when re-evaluating
            assert again[key] == pytest.approx(value, nan_ok=True), key
    assert math.isnan(again["FPS"])
    assert (second_dir / "precision_recall.png").exists() and (second_dir / "per_video.csv").exists()
    # The registered-name route reads the same ground truth.
    by_name = reevaluate_predictions(os.path.join(first_dir, "predictions.json"), GroundTruthSource(dataset=name))
    assert by_name["lesion_detection"]["AP50"] == results["lesion_detection"]["AP50"]


def coco_video_json(videos, image_root):
    """The fixture in the COCO-video JSON format that usvid.data.load_coco_video_json reads."""
    images, annotations = [], []
    for video in videos:
        for frame in video["frames"]:
            images.append(
                {
                    "id": len(images),
                    "video_id": video["video_id"],
                    "frame_id": frame["frame_idx"],
                    "file_name": os.path.relpath(frame["file_name"], image_root),
                    "height": SIZE,
                    "width": SIZE,
                }
            )
            for a in frame["annotations"]:
                x1, y1, x2, y2 = a["bbox"]
                annotations.append(
                    {
                        "id": len(annotations),
                        "image_id": images[-1]["id"],
                        "category_id": 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                    }
                )
    return {
        "videos": [{"id": v["video_id"]} for v in videos],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "lesion"}],
    }
