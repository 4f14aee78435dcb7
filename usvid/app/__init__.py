"""The Ultrasound VID application (floor 4): the wiring of usvid.data, usvid.modeling and
usvid.evaluation into the engine, and the command-line plumbing the tools/ scripts call.

* :class:`Trainer` (trainer.py): ``DefaultTrainer`` with the video model, loaders and evaluator;
* hard_negatives/: mining the training videos' false alarms, the mined file, the frame sampler
  that shows them more often (registered on import) and the hook that refreshes the loader;
* :func:`setup` (setup.py): arguments -> the run's frozen config, datasets and code backup;
* :func:`run_cli`, :func:`invoke_main` (cli.py): exit code 2 for bad input, multi-process launch;
* train.py / plain_train.py: the flows of tools/train_net.py and tools/plain_train_net.py;
* saved_predictions.py, visualization.py, demo.py: tools/eval_pred.py, visualize.py, demo.py;
* :class:`VideoPredictor` (predictor.py): a trained model on frames as they come (a live feed),
  and predict.py, the flow of tools/predict.py (any video, frame folder or DICOM in).
"""

from . import hard_negatives
from .cli import USER_INPUT_ERRORS, invoke_main, run_cli
from .demo import run_demo
from .predict import predict_inputs
from .predictor import VideoPredictor
from .saved_predictions import GroundTruthSource, reevaluate_predictions
from .setup import auto_output_dir, backup_code, setup
from .trainer import Trainer, summary_table
from .visualization import render_saved_predictions, visualize_predictions

__all__ = [
    "USER_INPUT_ERRORS",
    "GroundTruthSource",
    "Trainer",
    "VideoPredictor",
    "auto_output_dir",
    "backup_code",
    "hard_negatives",
    "invoke_main",
    "predict_inputs",
    "reevaluate_predictions",
    "render_saved_predictions",
    "run_cli",
    "run_demo",
    "setup",
    "summary_table",
    "visualize_predictions",
]
