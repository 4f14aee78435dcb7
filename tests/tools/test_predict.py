"""tools/predict.py as a user runs it on a trained run's weights: a folder of phantom frames gives
exactly the boxes and scores `train_net.py --eval-only` wrote for that video; a multi-frame
DICOM and an MP4 written here go through the same path; --crop auto ignores a static UI border;
bad input ends with one error line, exit code 2 and no output."""

import json
import os

import av
import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from usvid.app.predict import operating_point_threshold
from usvid.evaluation import evaluate_frame_predictions

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage


@pytest.fixture(scope="module")
def phantom_video(tiny_phantom_root):
    """(folder of the first test video's frames, its frames as arrays, its video_id)."""
    (root,) = [p for p in tiny_phantom_root.iterdir() if p.name.startswith("phantom_v") and p.is_dir()]
    video = json.load(open(root / "test.json"))["videos"][0]
    folder = root / "rawframes" / video["name"]
    return folder, [cv2.imread(str(f), cv2.IMREAD_UNCHANGED) for f in sorted(folder.glob("*.png"))], video["id"]


def _predictor_runner(trained_run, run_tiny, output):
    def run(path, *extra, opts=(), expect_code=0):
        """predict.py on ``path`` with the flags ``extra`` and the config overrides ``opts``."""
        weights = os.path.join(trained_run, "model_final.pth")
        args = ("--weights", weights, "--input", path, "--output", output, *extra)
        return run_tiny("predict.py", *args, opts=opts, expect_code=expect_code), output

    return run


@pytest.fixture
def predict(trained_run, run_tiny, tmp_path):
    """``predict(input, *extra, opts=(), expect_code=0)`` -> (completed process, output folder)."""
    return _predictor_runner(trained_run, run_tiny, tmp_path / "out")


@pytest.fixture(scope="module")
def folder_prediction(trained_run, run_tiny, phantom_video, tmp_path_factory):
    """(completed process, output folder) of predict.py on the phantom video's frame folder."""
    output = tmp_path_factory.mktemp("folder_prediction")
    return _predictor_runner(trained_run, run_tiny, output)(phantom_video[0])


def frames_of(predictions_json):
    (video,) = json.load(open(predictions_json))["videos"]
    return video["frames"]


def decoded_frames(mp4):
    with av.open(str(mp4)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_a_frame_folder_gives_exactly_what_eval_only_wrote(eval_only, phantom_video, folder_prediction):
    folder, frames, video_id = phantom_video
    result, output = folder_prediction
    name = folder.name
    evaluated = next(
        v
        for v in json.load(open(eval_only / "inference" / "phantom_test" / "predictions.json"))["videos"]
        if v["video_id"] == video_id
    )["frames"]
    predicted = frames_of(output / f"{name}_predictions.json")
    assert [f["frame_idx"] for f in predicted] == list(range(len(frames))) == [f["frame_idx"] for f in evaluated]
    assert sum(len(f["boxes"]) for f in predicted) > 0
    for mine, theirs in zip(predicted, evaluated):
        assert mine["boxes"] == theirs["boxes"] and mine["scores"] == theirs["scores"]
    assert len(decoded_frames(output / f"{name}_detections.mp4")) == len(frames)
    assert (
        f"{name}: {len(frames)} frames at " in result.stdout and str(output / f"{name}_detections.mp4") in result.stdout
    )
    assert "FPS" in result.stdout and "fps=" in result.stderr  # the last line and the progress bar


def write_multiframe_dicom(path, frames, photometric="MONOCHROME2", frame_time_ms=40.0):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = US_MULTIFRAME, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = US_MULTIFRAME, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns = frames[0].shape
    ds.NumberOfFrames = len(frames)
    if frame_time_ms is not None:
        ds.FrameTime = frame_time_ms
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    stack = np.stack(frames)
    ds.PixelData = (255 - stack if photometric == "MONOCHROME1" else stack).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_a_multiframe_dicom_cine_is_read_with_its_frame_rate_and_photometry(
    phantom_video, folder_prediction, predict, tmp_path
):
    folder, frames, _ = phantom_video
    _, by_folder = folder_prediction
    expected = frames_of(by_folder / f"{folder.name}_predictions.json")
    # MONOCHROME1 stores inverted grey levels: read correctly, the frames are the PNGs exactly.
    dicom = write_multiframe_dicom(tmp_path / "cine.dcm", frames, photometric="MONOCHROME1", frame_time_ms=40.0)
    result, output = predict(dicom)
    predicted = frames_of(output / "cine_predictions.json")
    assert [(f["boxes"], f["scores"]) for f in predicted] == [(f["boxes"], f["scores"]) for f in expected]
    with av.open(str(output / "cine_detections.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == 25.0  # FrameTime 40 ms
    assert "cine: 16 frames" in result.stdout


def test_fps_sets_the_rate_of_inputs_that_state_none_and_only_those(phantom_video, predict, tmp_path):
    folder, frames, _ = phantom_video
    unstated = write_multiframe_dicom(tmp_path / "unstated.dcm", frames[:4], frame_time_ms=None)
    stated = write_multiframe_dicom(tmp_path / "stated.dcm", frames[:4], frame_time_ms=40.0)
    _, output = predict(folder, "--input", unstated, "--input", stated, "--fps", "12.5")
    rates = {}
    for name in (folder.name, "unstated", "stated"):
        with av.open(str(output / f"{name}_detections.mp4")) as container:
            rates[name] = float(container.streams.video[0].average_rate)
    assert rates == {folder.name: 12.5, "unstated": 12.5, "stated": 25.0}
    written = sorted(os.listdir(output))
    for bad in ("0", "-3", "nan"):
        result, _ = predict(folder, "--fps", bad, expect_code=2)
        (line,) = [text for text in result.stderr.splitlines() if text.startswith("error: ")]
        assert f": {float(bad)} is not a frame rate" in line, line
        assert sorted(os.listdir(output)) == written  # nothing new, nothing partial
    result, _ = predict(folder, "--fps", "fast", expect_code=2)
    assert "argument --fps: invalid float value: 'fast'" in result.stderr, result.stderr


def write_video_with_pyav(path, frames, codec):
    """Grey frames as a real video container, encoded by PyAV with ``codec``."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.height, stream.width, stream.pix_fmt = frames[0].shape[0], frames[0].shape[1], "yuv420p"
        for frame in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), format="bgr24"))
            )
        container.mux(stream.encode())
    return path


def test_an_mp4_written_by_pyav_is_decoded_frame_by_frame(phantom_video, predict, tmp_path):
    _, frames, _ = phantom_video
    path = write_video_with_pyav(tmp_path / "scan.mp4", frames, "libx264")
    _, output = predict(path)
    predicted = frames_of(output / "scan_predictions.json")
    assert [f["frame_idx"] for f in predicted] == list(range(16))
    boxes = np.array([b for f in predicted for b in f["boxes"]])
    assert len(boxes) and (boxes >= -1e-3).all() and (boxes <= 64 + 1e-3).all()
    assert decoded_frames(output / "scan_detections.mp4")[0].shape[1] >= 384  # enlarged to be legible


def test_crop_auto_runs_on_the_moving_image_and_maps_boxes_back(phantom_video, folder_prediction, predict, tmp_path):
    folder, frames, _ = phantom_video
    screen = tmp_path / "screen"
    screen.mkdir()
    for i, frame in enumerate(frames):  # the scan pasted at (40, 30) into a capture with static UI
        canvas = np.zeros((110, 130), np.uint8)
        cv2.putText(canvas, "US 7.5MHz", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1)
        for y in range(20, 90, 8):
            cv2.line(canvas, (120, y), (126, y), 200, 1)
        canvas[30:94, 40:104] = frame
        cv2.imwrite(str(screen / f"{i:04d}.png"), canvas)
    _, by_folder = folder_prediction
    _, output = predict(screen, "--crop", "auto")
    expected = frames_of(by_folder / f"{folder.name}_predictions.json")
    cropped = frames_of(output / "screen_predictions.json")
    for mine, theirs in zip(cropped, expected):
        assert mine["scores"] == theirs["scores"]
        np.testing.assert_allclose(
            np.array(mine["boxes"]).reshape(-1, 4),
            np.array(theirs["boxes"]).reshape(-1, 4) + [40, 30, 40, 30],
            atol=1e-4,
        )


def _bad_dicoms(tmp_path, frames):
    no_image = pydicom.Dataset()
    no_image.file_meta = FileMetaDataset()
    no_image.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    no_image.file_meta.MediaStorageSOPClassUID = no_image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # a report
    no_image.file_meta.MediaStorageSOPInstanceUID = no_image.SOPInstanceUID = generate_uid()
    no_image.Modality = "SR"
    no_image.save_as(str(tmp_path / "report.dcm"), enforce_file_format=True)
    compressed = write_multiframe_dicom(tmp_path / "j2k.dcm", frames[:2])
    ds = pydicom.dcmread(str(compressed))
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + bytes(60)] * 2)
    ds["PixelData"].VR = "OB"
    ds.save_as(str(compressed), enforce_file_format=True)
    return tmp_path / "report.dcm", compressed


def test_bad_input_is_one_error_line_exit_code_2_and_no_output(phantom_video, predict, tmp_path, trained_run, run_tiny):
    _, frames, _ = phantom_video
    truncated = tmp_path / "cut.mp4"
    good = write_video_with_pyav(tmp_path / "good.mp4", frames, "mpeg4")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "empty").mkdir()
    report, j2k = _bad_dicoms(tmp_path, frames)
    cases = [
        (truncated, "cut.mp4"),
        (tmp_path / "empty", "a folder without frame images"),
        (report, "a DICOM file without an image"),
        (j2k, "pip install pylibjpeg pylibjpeg-openjpeg"),
    ]
    for path, message in cases:
        result, output = predict(path, expect_code=2)
        (line,) = [text for text in result.stderr.splitlines() if text.startswith("error: ")]
        assert message in line, (path, line)
        assert not output.exists() or not os.listdir(output), os.listdir(output)
    # Weights that do not fit the config (another width) are an error too.
    wide = _predictor_runner(trained_run, run_tiny, tmp_path / "wide")
    result, output = wide(phantom_video[0], opts=["MODEL.RESNETS.STEM_OUT_CHANNELS", 16], expect_code=2)
    assert "error: " in result.stderr and not output.exists()


def test_operating_point_is_the_evaluation_s_recall_80_threshold(tmp_path, eval_only, predict, phantom_video):
    # An evaluation whose detections reach recall 0.8: 10 lesion frames found with falling scores.
    lesion = [10.0, 10.0, 30.0, 30.0]
    video = {"video_id": 1, "frames": [{"frame_idx": i, "annotations": [{"bbox": lesion}]} for i in range(10)]}
    predictions = {
        (1, i): {"boxes": np.array([lesion]), "scores": np.array([1.0 - 0.05 * i]), "classes": np.zeros(1, int)}
        for i in range(10)
    }
    evaluate_frame_predictions(predictions, [video], "toy", output_dir=str(tmp_path / "inference" / "toy"))
    # A training run folder also holds the training curves' metrics.json (one JSON object per line).
    (tmp_path / "metrics.json").write_text(
        '{"iteration": 19, "total_loss": 1.5}\n{"iteration": 39, "total_loss": 1.2}\n'
    )
    threshold, where = operating_point_threshold(str(tmp_path))
    assert threshold == pytest.approx(0.65) and where == str(tmp_path / "inference" / "toy" / "metrics.json")
    result, _ = predict(phantom_video[0], "--operating-point", tmp_path)
    assert "score threshold 0.650: recall 0.8 of the evaluation in" in result.stdout
    # The tiny trained run never reaches recall 0.8: no operating point, said plainly.
    result, _ = predict(phantom_video[0], "--operating-point", eval_only, expect_code=2)
    assert "never reached recall 0.8" in result.stderr
