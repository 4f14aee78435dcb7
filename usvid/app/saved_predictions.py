"""Working from an evaluation's saved predictions.json without the model: find the ground truth
it is compared with, and re-evaluate it to the same metrics (tools/eval_pred.py)."""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from usvid.config import load_ultrasound_config
from usvid.data import load_ground_truth
from usvid.evaluation import evaluate_frame_predictions, load_predictions_json, print_csv_format


@dataclass(frozen=True)
class GroundTruthSource:
    """The ground truth that saved predictions are compared with, as the tools name it: the
    COCO-video JSON ``dataset_json`` (frame names relative to ``image_root``) or the registered
    ``dataset``; the built-in datasets are registered from ``config_file`` and ``opts``, which
    must describe the same data as the run that predicted."""

    dataset: str = ""
    dataset_json: str = ""
    image_root: str = ""
    config_file: str = ""
    opts: Sequence = ()

    @classmethod
    def from_args(cls, args) -> "GroundTruthSource":
        """The source a tool's ``--dataset``, ``--dataset-json``, ``--image-root``,
        ``--config-file`` and trailing overrides name (an option not given is None or "")."""
        return cls(args.dataset or "", args.dataset_json or "", args.image_root, args.config_file, args.opts)

    def load(self) -> Tuple[str, List[dict]]:
        """(dataset name, video dicts)."""
        cfg = load_ultrasound_config(self.config_file, self.opts)
        return load_ground_truth(cfg, self.dataset, self.dataset_json, self.image_root)


def reevaluate_predictions(
    predictions_json: str, ground_truth: GroundTruthSource, output_dir: Optional[str] = None, fps: float = 30.0
):
    """Evaluate ``predictions_json`` against ``ground_truth``; prints the results table and, with
    ``output_dir``, writes metrics.json, per_video.csv, predictions.json and the plots there, as
    the evaluation after inference does. FPS is NaN: speed needs the model. Returns the results."""
    dataset_name, videos = ground_truth.load()
    _, frame_predictions = load_predictions_json(predictions_json)
    results = evaluate_frame_predictions(frame_predictions, videos, dataset_name, output_dir=output_dir, fps=fps)
    print_csv_format(results)
    return results
