"""Working from an evaluation's saved predictions.json without the model: find the ground truth
it is compared with, and re-evaluate it to the same metrics (tools/eval_pred.py)."""

from typing import Optional, Sequence

from usvid.config import load_ultrasound_config
from usvid.data import load_ground_truth
from usvid.evaluation import evaluate_frame_predictions, load_predictions_json, print_csv_format


def ground_truth_for(
    config_file: str = "", opts: Sequence = (), dataset: str = "", dataset_json: str = "", image_root: str = ""
):
    """(dataset name, video dicts): the COCO-video JSON ``dataset_json`` (frame names relative to
    ``image_root``) or the registered ``dataset``; the built-in datasets are registered from
    ``config_file`` and ``opts``, which must describe the same data as the run that predicted."""
    cfg = load_ultrasound_config(config_file, opts)
    return load_ground_truth(cfg, dataset, dataset_json, image_root)


def reevaluate_predictions(
    predictions_json: str,
    dataset: str = "",
    dataset_json: str = "",
    image_root: str = "",
    config_file: str = "",
    opts: Sequence = (),
    output_dir: Optional[str] = None,
    fps: float = 30.0,
):
    """Evaluate ``predictions_json`` against the ground truth named as in :func:`ground_truth_for`;
    prints the results table and, with ``output_dir``, writes metrics.json, per_video.csv,
    predictions.json and the plots there, as the evaluation after inference does. FPS is NaN:
    speed needs the model. Returns the results."""
    dataset_name, videos = ground_truth_for(config_file, opts, dataset, dataset_json, image_root)
    _, frame_predictions = load_predictions_json(predictions_json)
    results = evaluate_frame_predictions(frame_predictions, videos, dataset_name, output_dir=output_dir, fps=fps)
    print_csv_format(results)
    return results
