"""``make demo`` (tools/demo.py): train the phantom UltraDet with a progress bar, evaluate it,
render a test video and print where everything is, with deterministic kernels so a second run
on the same machine prints the same numbers."""

import logging
import os
import sys
import time

from tqdm import tqdm

from usvid.config import load_ultrasound_config
from usvid.data import DatasetCatalog
from usvid.engine import HookBase, default_argument_parser
from usvid.evaluation import format_headline_metrics
from usvid.utils import comm
from usvid.utils.events import get_event_storage

from .quoted_results import compare_with_readme
from .setup import setup
from .trainer import Trainer, inference_dir
from .visualization import visualize_predictions

HEADLINE_METRICS = ("AP50", "Pr80", "FP80", "R@16", "FPS")
# The demo README.md quotes the results of: the default config, unchanged, for DEMO_MAX_ITER.
DEFAULT_CONFIG = "configs/phantom/ultradet.yaml"
# Half of the config's 2000-iteration schedule (its LR step scaled alike): on 2 CPU cores one
# iteration takes about 0.44 s, so the whole demo stays under 10 minutes. The benchmark
# (benchmarks/phantom_accuracy.py) trains the full schedule.
DEMO_MAX_ITER = 1000


class ProgressBar(HookBase):
    """A tqdm bar over the training iterations with the smoothed total loss."""

    def before_train(self):
        self._bar = tqdm(
            total=self.trainer.max_iter, initial=self.trainer.iter, desc="training", unit="it", dynamic_ncols=True
        )

    def after_step(self):
        self._bar.update(1)
        storage = get_event_storage()
        if "total_loss" in storage.histories():
            self._bar.set_postfix(loss=f"{storage.history('total_loss').median(20):.3f}", refresh=False)

    def after_train(self):
        self._bar.close()


class DemoTrainer(Trainer):
    """The application's trainer with a progress bar on the console."""

    def build_hooks(self):
        return super().build_hooks() + [ProgressBar()]


def quiet_console():
    """Keep the console for progress bars and warnings; the full log stays in log.txt."""
    for handler in logging.getLogger("usvid").handlers:
        if getattr(handler, "stream", None) is sys.stdout:
            handler.setLevel(logging.WARNING)


def render_test_video(cfg, dataset_name):
    """Render the test video with the most lesion frames from the evaluator's predictions.json."""
    (paths,) = visualize_predictions(
        os.path.join(inference_dir(cfg, dataset_name), "predictions.json"),
        DatasetCatalog.get(dataset_name),
        dataset_name,
        os.path.join(cfg.OUTPUT_DIR, "visualization"),
    )
    return paths


def print_summary(cfg, results, visual_paths, seconds, check_quote=False):
    """The closing lines of the demo: the headline metrics, whether they are the numbers the README
    quotes (``check_quote``: the default demo), and where every output lies."""
    dataset_name = cfg.DATASETS.TEST[0]
    metrics = results.get("lesion_detection", {}) if results else {}
    test_dir = inference_dir(cfg, dataset_name)
    lines = [
        "",
        f"usvid demo finished in {seconds / 60:.1f} min. Results on {dataset_name}:",
        "  " + format_headline_metrics(metrics, HEADLINE_METRICS),
    ]
    verdict = compare_with_readme(metrics) if check_quote else None
    if verdict:
        lines.append("  " + verdict)
    lines += [
        "",
        f"  trained weights     {os.path.join(cfg.OUTPUT_DIR, 'model_final.pth')}",
        f"  training curves     {os.path.join(cfg.OUTPUT_DIR, 'metrics.json')} (tensorboard --logdir {cfg.OUTPUT_DIR})",
        f"  test metrics        {os.path.join(test_dir, 'metrics.json')}",
        f"  plots               {test_dir}/*.png",
        f"  predictions         {os.path.join(test_dir, 'predictions.json')}",
        f"  test video          {visual_paths['video']}",
        f"  contact sheet       {visual_paths['contact_sheet']}",
        f"  full log            {os.path.join(cfg.OUTPUT_DIR, 'log.txt')}",
        "",
        "What the numbers mean: docs/en/metrics.md. Train on your own data: docs/en/getting_started.md.",
    ]
    print("\n".join(lines))


def schedule_overrides(config_file, opts, max_iter):
    """``SOLVER.MAX_ITER max_iter`` with the config's SOLVER.STEPS scaled by the same factor, so
    a shorter demo still lowers the learning rate at the same fraction of training (STEPS
    beyond MAX_ITER would be ignored, and the rate never lowered)."""
    cfg = load_ultrasound_config(config_file, opts)
    factor = max_iter / cfg.SOLVER.MAX_ITER
    steps = tuple(max(1, round(step * factor)) for step in cfg.SOLVER.STEPS)
    return ["SOLVER.MAX_ITER", str(max_iter), "SOLVER.STEPS", str(steps)]


def run_demo(config_file, opts=(), max_iter=None):
    """Train ``config_file`` with the ``opts`` overrides (and ``max_iter`` iterations, the schedule
    scaled to it), evaluate, render a test video and print the summary."""
    start = time.perf_counter()
    # Deterministic kernels: the demo prints the same numbers every time it runs on one machine,
    # at +2 % time (two CPU threads alone do not repeat bitwise; docs/en/reliability.md).
    all_opts = ["DETERMINISTIC", "True", *opts]
    if max_iter is not None:
        all_opts += schedule_overrides(config_file, opts, max_iter)
    args = default_argument_parser().parse_args(["--config-file", config_file, *all_opts])
    print(f"usvid demo: {config_file} (first run: the phantom is generated, ~1 min)")
    cfg = setup(args)
    quiet_console()
    trainer = DemoTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    if comm.is_main_process():
        print("rendering a test video ...")
        visual_paths = render_test_video(cfg, cfg.DATASETS.TEST[0])
        default_run = os.path.normpath(config_file) == DEFAULT_CONFIG and not opts and max_iter == DEMO_MAX_ITER
        print_summary(cfg, results, visual_paths, time.perf_counter() - start, check_quote=default_run)
