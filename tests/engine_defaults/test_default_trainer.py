import json
import logging
import shlex
import sys

import pytest
import torch
from toy_training import ToyEvaluator, ToyModel, ToyTrainer, toy_cfg, toy_data

from usvid.config import ConfigError
from usvid.engine import AMPTrainer, DefaultTrainer, HookBase, amp_trainer, default_argument_parser, default_setup
from usvid.engine import hooks as engine_hooks

TIMING_KEYS = {"time", "data_time"}


class StopAfter(HookBase):
    """Ends training after iteration ``last`` as an interrupted job would stop."""

    def __init__(self, last):
        self.last = last

    def after_step(self):
        if self.trainer.iter == self.last:
            self.trainer.should_stop = True


def _metrics(output_dir):
    lines = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in lines]


def _tensorboard_scalars(output_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(output_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag not in TIMING_KEYS
    }


def _train(cfg, resume=False, extra_hooks=()):
    trainer = ToyTrainer(cfg)
    trainer.register_hooks(list(extra_hooks))
    trainer.resume_or_load(resume=resume)
    results = trainer.train()
    return trainer, results


def test_stopped_and_resumed_run_equals_the_uninterrupted_run(tmp_path):
    full, full_results = _train(toy_cfg(tmp_path / "full"))

    first, first_results = _train(toy_cfg(tmp_path / "resumed"), extra_hooks=[StopAfter(19)])
    assert first_results == {"toy": {"mse": pytest.approx(first_results["toy"]["mse"])}}  # the eval at 19
    assert (
        first.iter == 20 and (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_final.pth"
    )  # stopped by a hook

    resumed, resumed_results = _train(toy_cfg(tmp_path / "resumed"), resume=True)
    assert resumed.start_iter == 20
    assert resumed_results == full_results
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert resumed.data_loader.sampler.state_dict() == full.data_loader.sampler.state_dict()

    full_metrics, resumed_metrics = _metrics(tmp_path / "full"), _metrics(tmp_path / "resumed")
    assert [m["iteration"] for m in full_metrics] == [19, 39, 40]  # 40: the final evaluation
    assert resumed_metrics == full_metrics  # same values, no duplicated lines
    assert _tensorboard_scalars(tmp_path / "resumed") == _tensorboard_scalars(tmp_path / "full")
    assert {"total_loss", "loss_mse", "loss_l1", "lr", "toy/mse"} <= set().union(*full_metrics)


@pytest.mark.parametrize("stop_after, checkpoint_period", [(9, 10), (17, 1)])
def test_resume_between_two_metric_writes_keeps_the_smoothing_window(tmp_path, stop_after, checkpoint_period):
    # Metrics are written every 20 iterations as medians over 20 iterations: the line of
    # iteration 19 of a run resumed at 10 needs the losses of iterations 0-9 too. Resumed at 18,
    # the step timer is still warming up at 19: no stale step time may get a line of its own.
    overrides = ("SOLVER.CHECKPOINT_PERIOD", checkpoint_period, "SOLVER.MAX_TO_KEEP", 2, "TEST.EVAL_PERIOD", 0)
    full, _ = _train(toy_cfg(tmp_path / "full", *overrides))
    _train(toy_cfg(tmp_path / "resumed", *overrides), extra_hooks=[StopAfter(stop_after)])
    resumed, _ = _train(toy_cfg(tmp_path / "resumed", *overrides), resume=True)
    assert resumed.start_iter == stop_after + 1
    assert _metrics(tmp_path / "resumed") == _metrics(tmp_path / "full")
    # TensorBoard shows the same curves: the flush of the stopped run is hidden.
    assert _tensorboard_scalars(tmp_path / "resumed") == _tensorboard_scalars(tmp_path / "full")
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def _ema_hook(trainer):
    return next(h for h in trainer.hooks if isinstance(h, engine_hooks.EMA))


def test_exact_resume_with_ema_weights_enabled_by_the_config(tmp_path):
    def train(output_dir, resume=False, extra_hooks=()):
        trainer = ToyTrainer(toy_cfg(output_dir, "MODEL_EMA.ENABLED", True, "MODEL_EMA.DECAY", 0.9))
        assert _ema_hook(trainer)._decay == 0.9
        trainer.register_hooks(list(extra_hooks))
        trainer.resume_or_load(resume=resume)
        return trainer, trainer.train()

    full, full_results = train(tmp_path / "full")
    train(tmp_path / "resumed", extra_hooks=[StopAfter(19)])
    resumed, resumed_results = train(tmp_path / "resumed", resume=True)
    assert resumed.start_iter == 20 and resumed_results == full_results
    full_ema, resumed_ema = _ema_hook(full).weights, _ema_hook(resumed).weights
    assert set(full_ema) == set(resumed_ema)
    for name, value in full_ema.items():
        assert torch.equal(value, resumed_ema[name]), name
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert _metrics(tmp_path / "resumed") == _metrics(tmp_path / "full")


def test_evaluating_a_trained_run_uses_its_ema_weights_as_training_did(tmp_path):
    cfg = toy_cfg(tmp_path, "MODEL_EMA.ENABLED", True, "MODEL_EMA.DECAY", 0.9)
    trained, results = _train(cfg)
    ema_weights = _ema_hook(trained).weights
    model = ToyModel(0.2)
    eval_cfg = cfg.clone()
    eval_cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")
    ToyTrainer.load_trained_weights(eval_cfg, model)
    for name, value in model.state_dict().items():
        assert torch.equal(value, ema_weights[name]), name
    assert ToyTrainer.test(eval_cfg, model) == results  # the numbers of the final evaluation
    with pytest.raises(ValueError, match="needs trained weights: set MODEL.WEIGHTS"):
        ToyTrainer.load_trained_weights(toy_cfg(tmp_path / "empty"), ToyModel(0.2))


@pytest.mark.parametrize(
    "key, value",
    [("SOLVER.MAX_ITER", 0), ("SOLVER.CHECKPOINT_PERIOD", 0), ("SOLVER.BASE_LR", -0.1), ("TEST.EVAL_PERIOD", -1)],
)
def test_a_schedule_value_out_of_range_is_an_error_naming_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"{key} must be a number >= .*got {value}"):
        ToyTrainer(toy_cfg(tmp_path, key, value))
    assert not (tmp_path / "metrics.json").exists()


def test_a_run_ended_early_by_a_hook_saves_its_weights_as_model_final(tmp_path):
    trainer, _ = _train(toy_cfg(tmp_path, "SOLVER.CHECKPOINT_PERIOD", 100), extra_hooks=[StopAfter(12)])
    final = torch.load(tmp_path / "model_final.pth", weights_only=False)
    assert final["iteration"] == 12
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(final["model"][name], value), name
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


def test_resuming_a_finished_run_returns_at_once_without_a_second_evaluation(tmp_path):
    cfg = toy_cfg(tmp_path, "SOLVER.MAX_ITER", 20)
    _train(cfg)
    metrics_before = (tmp_path / "metrics.json").read_text()
    assert json.loads(metrics_before.splitlines()[-1])["iteration"] == 20  # the final evaluation
    again, results = _train(cfg, resume=True)
    assert again.start_iter == 20 and results is None
    assert (tmp_path / "metrics.json").read_text() == metrics_before  # no line for iteration 21


def test_a_new_run_in_a_used_folder_moves_the_earlier_run_aside(tmp_path):
    _train(toy_cfg(tmp_path))
    first_weights = (tmp_path / "model_final.pth").read_bytes()
    first_metrics = (tmp_path / "metrics.json").read_text()
    first_tensorboard = _tensorboard_scalars(tmp_path)
    for _ in range(2):  # twice within a second: two archives, nothing overwritten
        _train(toy_cfg(tmp_path, "SOLVER.BASE_LR", 0.01))
    archives = sorted(tmp_path.glob("previous_run_*"))
    assert len(archives) == 2
    assert (archives[0] / "metrics.json").read_text() == first_metrics
    assert (archives[0] / "model_final.pth").read_bytes() == first_weights
    assert _tensorboard_scalars(archives[0]) == first_tensorboard
    second_metrics = _metrics(tmp_path)
    assert [m["iteration"] for m in second_metrics] == [19, 39, 40]
    assert second_metrics[0]["lr"] == pytest.approx(0.01)  # the new run's lines, not the old ones
    assert _tensorboard_scalars(tmp_path)["lr"][0][1] == pytest.approx(0.01)
    assert _metrics(archives[1]) == second_metrics  # the second new run archived the first one's


def test_checkpoint_holds_trainer_hooks_sampler_and_rng(tmp_path):
    trainer, _ = _train(toy_cfg(tmp_path, "SOLVER.MAX_ITER", 20, "TEST.EVAL_PERIOD", 0))
    checkpoint = torch.load(tmp_path / "model_final.pth", weights_only=False)
    assert checkpoint["iteration"] == 19
    assert checkpoint["trainer"]["iteration"] == 19 and "optimizer" in checkpoint["trainer"]["_trainer"]
    assert "LRScheduler" in checkpoint["trainer"]["hooks"] and "PeriodicCheckpointer" in checkpoint["trainer"]["hooks"]
    assert checkpoint["train_sampler"] == {"seed": 7, "size": 64, "global_position": 20 * 8}
    assert len(checkpoint["rng_states"]) == 1


def test_hooks_in_detectron2_order_and_weights_only_load(tmp_path):
    cfg = toy_cfg(tmp_path / "a", "SOLVER.MAX_ITER", 2)
    trainer = ToyTrainer(cfg)
    names = [type(h).__name__ for h in trainer.hooks]
    assert names == [
        "IterationTimer",
        "LRScheduler",
        "EvalHook",
        "PeriodicWriter",
        "PeriodicCheckpointer",
        "PreemptionHook",
    ]
    trainer.resume_or_load(resume=True)
    trainer.train()

    cfg = toy_cfg(tmp_path / "b", "SOLVER.MAX_ITER", 2, "MODEL.WEIGHTS", tmp_path / "a" / "model_final.pth")
    fresh = ToyTrainer(cfg)
    fresh.resume_or_load(resume=True)  # nothing to resume in b: weights only, from iteration 0
    assert fresh.start_iter == 0
    assert torch.equal(fresh.model.net[0].weight, trainer.model.net[0].weight)


def test_amp_bf16_grad_accumulation_and_clipping_are_wired(tmp_path):
    cfg = toy_cfg(
        tmp_path,
        "SOLVER.MAX_ITER",
        2,
        "SOLVER.AMP.ENABLED",
        True,
        "SOLVER.AMP.PRECISION",
        "bfloat16",
        "SOLVER.GRAD_ACCUM_STEPS",
        2,
        "SOLVER.CLIP_GRADIENTS.ENABLED",
        True,
        "TEST.EVAL_PERIOD",
        0,
    )
    trainer = ToyTrainer(cfg)
    assert isinstance(trainer._trainer, AMPTrainer) and trainer._trainer.precision == torch.bfloat16
    assert trainer._trainer.grad_accum_steps == 2 and trainer._trainer.clip_grad_norm == 1.0
    trainer.train()
    assert trainer.data_loader.sampler.state_dict()["global_position"] == 2 * 2 * 8
    assert "grad_norm" in trainer.storage.histories()


@pytest.mark.parametrize("flags, native", [("fpu avx2", False), ("fpu amx_tile amx_bf16", True)])
def test_auto_precision_trains_in_bfloat16_only_on_a_cpu_with_native_bfloat16(
    tmp_path, monkeypatch, caplog, flags, native
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(amp_trainer, "CPUINFO", str(cpuinfo))
    cfg = toy_cfg(tmp_path / "run", "SOLVER.AMP.ENABLED", True, "SOLVER.AMP.PRECISION", "auto", "SOLVER.MAX_ITER", 1)
    with caplog.at_level(logging.INFO, logger="usvid"):
        trainer = ToyTrainer(cfg)
    assert isinstance(trainer._trainer, AMPTrainer) == native
    if native:
        assert trainer._trainer.precision == torch.bfloat16
    said = [line for line in caplog.text.splitlines() if "Training in" in line]
    assert len(said) == 1 and ("bfloat16 autocast" in said[0]) == native and str(cpuinfo) in said[0]
    trainer.train()


def test_after_backward_hooks_of_the_default_trainer_run(tmp_path):
    seen = []
    hook = engine_hooks.CallbackHook(after_backward=lambda trainer: seen.append(trainer.iter))
    _train(toy_cfg(tmp_path, "SOLVER.MAX_ITER", 3, "TEST.EVAL_PERIOD", 0), extra_hooks=[hook])
    assert seen == [0, 1, 2]


def test_builders_must_be_overridden_with_a_helpful_message(tmp_path):
    with pytest.raises(NotImplementedError, match="override build_model.*usvid/app/trainer.py"):
        DefaultTrainer(toy_cfg(tmp_path))
    for method, args in [("build_train_loader", ()), ("build_test_loader", ("x",)), ("build_evaluator", ("x",))]:
        with pytest.raises(NotImplementedError, match=f"DefaultTrainer.{method} is not implemented"):
            getattr(DefaultTrainer, method)(toy_cfg(tmp_path), *args)


def test_test_and_inference_restore_training_mode():
    model = ToyModel(dropout=0.5)
    model.train()
    cfg = toy_cfg("unused", "DATASETS.TEST", "('a', 'b')")
    results = ToyTrainer.test(cfg, model)
    assert model.training
    assert set(results) == {"a", "b"} and results["a"] == results["b"]  # dropout was off: deterministic
    model.eval()
    with torch.no_grad():
        expected = ((model(toy_data()) - toy_data()[1]) ** 2).mean().item()
    assert results["a"]["toy"]["mse"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="1 evaluators given for 2 datasets"):
        ToyTrainer.test(cfg, model, evaluators=[ToyEvaluator()])

    class GradientRecorder(ToyEvaluator):
        def process(self, inputs, outputs):
            self.saw_gradients = outputs.requires_grad
            super().process(inputs, outputs)

    recorder = GradientRecorder()
    model.train()
    single = ToyTrainer.test(toy_cfg("unused"), model, evaluators=[recorder])
    assert set(single) == {"toy"} and recorder.saw_gradients is False and model.training


def test_expected_results_are_verified_after_training(tmp_path):
    cfg = toy_cfg(tmp_path, "SOLVER.MAX_ITER", 2, "TEST.EXPECTED_RESULTS", "[['toy', 'mse', -1.0, 0.1]]")
    with pytest.raises(RuntimeError, match="differ from TEST.EXPECTED_RESULTS"):
        _train(cfg)


def test_auto_scale_workers_scales_linearly():
    cfg = toy_cfg("unused", "SOLVER.REFERENCE_WORLD_SIZE", 2, "SOLVER.IMS_PER_BATCH", 8, "SOLVER.STEPS", "(20, 30)")
    cfg.SOLVER.CLIPS_PER_BATCH = 6  # an application's own batch key
    cfg.freeze()
    scaled = DefaultTrainer.auto_scale_workers(cfg, 4)
    assert scaled.is_frozen() and cfg.SOLVER.IMS_PER_BATCH == 8
    assert (scaled.SOLVER.IMS_PER_BATCH, scaled.SOLVER.BASE_LR, scaled.SOLVER.MAX_ITER) == (16, 0.1, 20)
    assert (scaled.SOLVER.STEPS, scaled.SOLVER.WARMUP_ITERS, scaled.SOLVER.CHECKPOINT_PERIOD) == ((10, 15), 2, 10)
    assert scaled.TEST.EVAL_PERIOD == 10 and scaled.SOLVER.REFERENCE_WORLD_SIZE == 4
    assert DefaultTrainer.auto_scale_workers(cfg, 2) is cfg
    assert scaled.SOLVER.CLIPS_PER_BATCH == 6  # not an engine key...

    class ClipTrainer(DefaultTrainer):
        BATCH_SIZE_KEYS = DefaultTrainer.BATCH_SIZE_KEYS + ("CLIPS_PER_BATCH",)

    clips = ClipTrainer.auto_scale_workers(cfg, 4)  # ...until an application names it
    assert (clips.SOLVER.CLIPS_PER_BATCH, clips.SOLVER.IMS_PER_BATCH) == (12, 16)


def test_argument_parser_and_default_setup(tmp_path):
    config_file = tmp_path / "toy.yaml"
    config_file.write_text("SOLVER:\n  BASE_LR: 0.5\n")
    args = default_argument_parser().parse_args(
        ["--config-file", str(config_file), "--resume", "--num-gpus", "2", "SOLVER.MAX_ITER", "7"]
    )
    assert (args.resume, args.eval_only, args.num_gpus, args.num_machines, args.dist_url) == (True, False, 2, 1, "auto")
    assert args.opts == ["SOLVER.MAX_ITER", "7"]

    cfg = toy_cfg(tmp_path / "out", "SEED", 5)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    saved = toy_cfg("x")
    saved.merge_from_file(str(tmp_path / "out" / "config.yaml"))
    assert saved.SOLVER.BASE_LR == 0.5 and saved.SOLVER.MAX_ITER == 7
    assert (tmp_path / "out" / "command.txt").read_text() == shlex.join([sys.executable] + sys.argv) + "\n"
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "Environment info" in log and "Random seed of rank 0: 5" in log
    assert torch.initial_seed() == 5
    assert torch.are_deterministic_algorithms_enabled()  # DETERMINISTIC None: on for a CPU run


def test_deterministic_kernels_are_the_default_on_cpu_and_not_on_cuda(tmp_path, monkeypatch):
    from usvid.engine.defaults import deterministic_kernels_wanted

    assert toy_cfg(tmp_path).DETERMINISTIC is None
    assert deterministic_kernels_wanted(toy_cfg(tmp_path, "MODEL.DEVICE", "cpu"))
    assert not deterministic_kernels_wanted(toy_cfg(tmp_path, "MODEL.DEVICE", "cpu", "DETERMINISTIC", False))
    default_setup(toy_cfg(tmp_path, "DETERMINISTIC", False), default_argument_parser().parse_args([]))
    assert not torch.are_deterministic_algorithms_enabled()  # the key still switches it off
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # MODEL.DEVICE "auto" then means CUDA
    assert not deterministic_kernels_wanted(toy_cfg(tmp_path, "MODEL.DEVICE", "auto"))
    assert deterministic_kernels_wanted(toy_cfg(tmp_path, "MODEL.DEVICE", "auto", "DETERMINISTIC", True))


def test_deterministic_turns_on_deterministic_kernels_without_filling_new_tensors(tmp_path):
    cfg = toy_cfg(tmp_path / "out", "DETERMINISTIC", True)
    default_setup(cfg, default_argument_parser().parse_args([]))
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    # torch's deterministic mode would also fill every torch.empty with NaN, slow and not needed
    # to repeat results: usvid turns that debugging aid off and keeps the deterministic kernels.
    assert not torch.utils.deterministic.fill_uninitialized_memory


def test_deterministic_with_cudnn_benchmark_is_an_error_naming_both_keys(tmp_path):
    cfg = toy_cfg(tmp_path / "out", "DETERMINISTIC", True, "CUDNN_BENCHMARK", True)
    with pytest.raises(ValueError, match="DETERMINISTIC=True and CUDNN_BENCHMARK=True"):
        default_setup(cfg, default_argument_parser().parse_args([]))
    assert not torch.are_deterministic_algorithms_enabled()


def test_model_optimizer_and_data_loader_can_be_replaced_before_training(tmp_path):
    trainer = ToyTrainer(toy_cfg(tmp_path, "SOLVER.MAX_ITER", 3, "TEST.EVAL_PERIOD", 0, "DATASETS.TEST", "()"))
    old_weight = trainer.model.net[0].weight.detach().clone()
    torch.manual_seed(1)
    model = ToyModel(dropout=0.0)
    new_weight = model.net[0].weight.detach().clone()
    x, y = toy_data()
    batches = []

    def loader():
        while True:
            batches.append(1)
            yield x[:8], y[:8]

    trainer.model = model
    trainer.optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer.scheduler = ToyTrainer.build_lr_scheduler(trainer.cfg, trainer.optimizer)  # the schedule of the new one
    trainer.data_loader = loader()
    assert trainer.model is model and trainer._trainer.model is model
    trainer.train()
    assert len(batches) == 3  # every step took its batch from the new loader...
    assert not torch.equal(model.net[0].weight, new_weight)  # ...trained the new model with the new optimizer
    assert torch.equal(trainer.checkpointer.model.net[0].weight, old_weight)  # the replaced model is untouched


def test_a_resume_with_a_changed_schedule_follows_the_config_and_says_what_changed(tmp_path, caplog, monkeypatch):
    _train(toy_cfg(tmp_path), extra_hooks=[StopAfter(19)])  # STEPS (25,), BASE_LR 0.05, MAX_ITER 40
    trainer = ToyTrainer(toy_cfg(tmp_path, "SOLVER.STEPS", "(30,)", "SOLVER.BASE_LR", 0.02, "SOLVER.MAX_ITER", 50))
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="usvid"):
        trainer.resume_or_load(resume=True)
    assert "SOLVER.STEPS: [25] -> [30]" in caplog.text
    assert "SOLVER.BASE_LR (and the per-group factors): [0.05] -> [0.02]" in caplog.text
    assert "SOLVER.MAX_ITER changed since the checkpoint: 40 -> 50" in caplog.text
    trainer.train()
    lrs = dict((iteration, lr) for lr, iteration in trainer.storage.history("lr").values())
    assert trainer.iter == 50 and lrs[19] == pytest.approx(0.05)  # the interrupted run's, restored
    assert lrs[20] == pytest.approx(0.02) and lrs[29] == pytest.approx(0.02)  # the new BASE_LR, no decay at 25
    assert lrs[30] == pytest.approx(0.002) and lrs[49] == pytest.approx(0.002)  # the new step
