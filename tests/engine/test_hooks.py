"""The standard hooks on the toy regression problem, with real writers and checkpoints."""

import copy
import itertools
import json

import pytest
import torch
from torch import nn

from usvid.checkpoint import Checkpointer
from usvid.engine import (
    EMA,
    BestCheckpointer,
    CallbackHook,
    EarlyStopping,
    EvalHook,
    IterationTimer,
    LRScheduler,
    PeriodicCheckpointer,
    PeriodicWriter,
    PreciseBN,
    TorchProfiler,
    update_bn_stats,
)
from usvid.utils.events import EventWriter, JSONWriter, get_event_storage
from usvid.utils.periodic import fires_after, last_scheduled_firing


def metrics_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_json_iterations_with_periodic_writer(make_trainer, tmp_path):
    trainer = make_trainer()
    trainer.register_hooks([PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=20)])
    trainer.train(0, 50)
    lines = metrics_lines(tmp_path / "metrics.json")
    assert [line["iteration"] for line in lines] == [19, 39, 49]
    assert {"total_loss", "loss_mse", "loss_l1", "data_time"} <= set(lines[0])


def test_final_evaluation_gets_its_own_metrics_line_at_max_iter(make_trainer, tmp_path):
    trainer = make_trainer()
    evaluated_at = []

    def evaluate():
        evaluated_at.append(trainer.iter)
        return {"val": {"AP": 0.5, "AR": 0.25}}

    # Registered before the EvalHook: priorities still make the writer write the results.
    writer = PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=20)
    trainer.register_hooks([writer, EvalHook(0, evaluate)])
    trainer.train(0, 50)
    lines = metrics_lines(tmp_path / "metrics.json")
    assert [line["iteration"] for line in lines] == [19, 39, 49, 50]
    assert lines[-1] == {"iteration": 50, "val/AP": 0.5, "val/AR": 0.25}
    assert evaluated_at == [50]


def test_the_firing_rule_and_the_last_scheduled_firing_agree():
    assert [i for i in range(50) if fires_after(i, 20, max_iter=45)] == [19, 39, 44]  # periodic, then the last
    assert [i for i in range(10) if fires_after(i, 0, max_iter=10)] == [9]  # period 0: only the last
    assert not fires_after(9, 0)  # no max_iter: no last iteration
    assert [last_scheduled_firing(i, 20) for i in (0, 18, 19, 20, 38, 39, 45)] == [-1, -1, 19, 19, 19, 39, 39]
    for i in range(100):
        assert last_scheduled_firing(i, 7) == max([j for j in range(i + 1) if fires_after(j, 7)], default=-1)


class RecordingWriter(EventWriter):
    def __init__(self):
        self.calls = []

    def resume_after(self, last_kept_iteration):
        self.calls.append(("resume_after", last_kept_iteration))

    def write(self):
        self.calls.append(("write", get_event_storage().iter))


@pytest.mark.parametrize("start_iter, kept, first_write", [(0, None, 9), (5, -1, 9), (10, 9, 19), (33, 29, 39)])
def test_periodic_writer_tells_its_writers_where_a_resumed_run_rewrites_from(
    make_trainer, start_iter, kept, first_write
):
    trainer = make_trainer()
    writer = RecordingWriter()
    trainer.register_hooks([PeriodicWriter([writer], period=10)])
    trainer.train(start_iter, 40)
    expected_start = [] if kept is None else [("resume_after", kept)]
    assert writer.calls[: len(expected_start) + 1] == expected_start + [("write", first_write)]
    assert [call for call in writer.calls if call[0] == "resume_after"] == expected_start


def test_a_resumed_periodic_writer_rewinds_metrics_json_to_the_uninterrupted_schedule(make_trainer, tmp_path):
    path = tmp_path / "metrics.json"
    first = make_trainer()
    first.register_hooks([PeriodicWriter([JSONWriter(str(path))], period=20)])
    first.register_hooks([CallbackHook(after_step=lambda t: setattr(t, "should_stop", t.iter == 25))])
    first.train(0, 50)
    assert [line["iteration"] for line in metrics_lines(path)] == [19, 25]  # the stop flushed 25
    resumed = make_trainer()
    resumed.register_hooks([PeriodicWriter([JSONWriter(str(path))], period=20)])
    resumed.train(26, 50)
    assert [line["iteration"] for line in metrics_lines(path)] == [19, 39, 49]


def test_periodic_writer_rejects_a_period_below_one(tmp_path):
    with pytest.raises(ValueError, match="period must be >= 1"):
        PeriodicWriter([JSONWriter(str(tmp_path / "metrics.json"))], period=0)


def test_no_final_evaluation_after_a_failed_run(make_trainer):
    evaluated = []

    def fail_at_4(trainer):
        if trainer.iter == 4:
            raise RuntimeError("stop here")

    trainer = make_trainer()
    trainer.register_hooks(
        [EvalHook(2, lambda: evaluated.append(trainer.iter) or {}), CallbackHook(before_step=fail_at_4)]
    )
    with pytest.raises(RuntimeError):
        trainer.train(0, 10)
    assert evaluated == [1, 3]  # the periodic ones only


def test_no_final_evaluation_or_best_checkpoint_when_the_last_step_fails(make_trainer, tmp_path):
    evaluated = []

    def fail_at_last(trainer):
        if trainer.iter == trainer.max_iter - 1:
            raise FloatingPointError("NaN in the last step")

    trainer = make_trainer()
    best = BestCheckpointer(0, Checkpointer(trainer.model, str(tmp_path)), "acc")
    evaluate = EvalHook(0, lambda: evaluated.append(trainer.iter) or {"acc": 1.0})
    trainer.register_hooks([evaluate, best, CallbackHook(before_step=fail_at_last)])
    with pytest.raises(FloatingPointError):
        trainer.train(0, 5)
    assert evaluated == [] and trainer.iter == 4
    assert not (tmp_path / "model_best.pth").exists()


def test_iteration_timer_skips_warmup(make_trainer, usvid_logs):
    trainer = make_trainer()
    timer = IterationTimer(warmup_iter=3)
    trainer.register_hooks([timer])
    trainer.train(0, 10)
    times = trainer.storage.history("time").values()
    assert [it for _, it in times] == list(range(3, 10))
    assert all(t > 0 for t, _ in times)
    assert timer.timed_steps == 7
    assert "Overall training speed: 7 iterations" in usvid_logs.text
    assert "Total training time" in usvid_logs.text


def test_lr_is_logged_before_the_scheduler_steps(make_trainer):
    trainer = make_trainer(lr=0.8)
    scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    trainer.register_hooks([LRScheduler(scheduler=scheduler)])
    trainer.train(0, 4)
    assert trainer.storage.history("lr").values() == [(0.8, 0), (0.4, 1), (0.2, 2), (0.1, 3)]
    assert trainer.state_dict()["hooks"]["LRScheduler"]["last_epoch"] == 4


def test_lr_scheduler_hook_runs_a_param_scheduler_of_training_progress(make_trainer):
    trainer = make_trainer(lr=1.0)
    trainer.register_hooks([LRScheduler(scheduler=lambda where: 1.0 - where)])  # linear decay to 0
    trainer.train(0, 4)
    assert trainer.storage.history("lr").values() == [(1.0, 0), (0.75, 1), (0.5, 2), (0.25, 3)]
    assert trainer.state_dict()["hooks"] == {}  # the schedule's position is the trainer's iteration

    resumed = make_trainer(lr=1.0)
    resumed.register_hooks([LRScheduler(scheduler=lambda where: 1.0 - where)])
    resumed.iter = 2  # as a resume from the checkpoint of iteration 1 leaves it
    resumed.train(2, 4)
    assert resumed.storage.history("lr").values() == [(0.5, 2), (0.25, 3)]


def test_lr_comes_from_the_largest_param_group(toy_model, toy_batches):
    from usvid.engine import SimpleTrainer

    optimizer = torch.optim.SGD(
        [{"params": [toy_model.linear.bias], "lr": 1.0}, {"params": [toy_model.linear.weight], "lr": 0.1}], lr=0.1
    )
    extra = nn.Parameter(torch.zeros(1))
    optimizer.param_groups[1]["params"].append(extra)
    trainer = SimpleTrainer(toy_model, toy_batches(), optimizer)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)
    trainer.register_hooks([LRScheduler()])
    trainer.train(0, 1)
    assert trainer.storage.history("lr").latest() == 0.1


def test_ema_follows_the_recurrence_and_is_used_for_evaluation(make_trainer):
    decay = 0.75
    trainer = make_trainer(lr=0.1)
    model = trainer.model
    expected = model.linear.weight.detach().clone().double()
    seen_in_eval = []

    def track(t):
        nonlocal expected
        expected = decay * expected + (1 - decay) * model.linear.weight.detach().double()

    def evaluate():
        seen_in_eval.append(model.linear.weight.detach().clone())
        return {"w0": model.linear.weight[0, 0].item()}

    ema = EMA(decay=decay)
    # Registered last: priority 20 still runs the EMA update before evaluation and tracking.
    trainer.register_hooks([EvalHook(3, evaluate, eval_after_train=False), CallbackHook(after_step=track), ema])
    trainer.train(0, 5)
    torch.testing.assert_close(ema.weights["linear.weight"].double(), expected, atol=1e-6, rtol=0)
    assert len(seen_in_eval) == 1
    assert not torch.equal(seen_in_eval[0], model.linear.weight)  # evaluation saw other weights...
    with ema.apply_to_model():
        torch.testing.assert_close(model.linear.weight, ema.weights["linear.weight"])
    assert not torch.equal(model.linear.weight, ema.weights["linear.weight"])  # ...and they were restored
    assert set(trainer.state_dict()["hooks"]["EMA"]["weights"]) == {"linear.weight", "linear.bias"}


def test_early_stopping_stops_after_patience_evaluations_without_improvement(make_trainer):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    trainer = make_trainer()
    stopper = EarlyStopping("acc", mode="max", patience=2)
    trainer.register_hooks([stopper, EvalHook(2, lambda: {"acc": next(scores)})])
    trainer.train(0, 100)
    assert trainer.iter == 8  # evaluations after iterations 1, 3, 5, 7: the 2nd bad one stops
    assert stopper.state_dict() == {"best": 0.7, "num_bad_evals": 2, "last_seen_iter": 7}
    with pytest.raises(ValueError, match="'max'"):
        EarlyStopping("acc", mode="up")


def test_a_resumed_early_stopping_does_not_count_the_restored_evaluation_again(make_trainer):
    def run(stop_after=None, state=None, start_iter=0):
        scores = iter([0.5, 0.7, 0.6, 0.65, 0.6, 0.9][start_iter // 2 :])
        trainer = make_trainer()
        trainer.register_hooks([EarlyStopping("acc", patience=3), EvalHook(2, lambda: {"acc": next(scores)})])
        if stop_after is not None:
            trainer.register_hooks([CallbackHook(after_step=lambda t: setattr(t, "should_stop", t.iter == stop_after))])
        if state is not None:
            trainer.load_state_dict(state)
        trainer.train(start_iter, 100)
        return trainer

    uninterrupted = run()
    assert uninterrupted.iter == 10  # bad evaluations after iterations 5, 7, 9
    interrupted = run(stop_after=5)  # its checkpoint holds the storage with the evaluation of 5
    resumed = run(state=copy.deepcopy(interrupted.state_dict()), start_iter=6)
    assert resumed.iter == uninterrupted.iter


def test_periodic_checkpointer_hook_takes_detectron2s_argument_order(make_trainer, tmp_path):
    # (checkpointer, period, max_iter, max_to_keep, file_prefix); the trainer's max_iter wins.
    trainer = make_trainer()
    trainer.register_hooks([PeriodicCheckpointer(Checkpointer(trainer.model, str(tmp_path)), 2, 1000, 1, "ckpt")])
    trainer.train(0, 9)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["ckpt_0000007.pth", "ckpt_final.pth"]


def test_best_and_periodic_checkpoints_with_the_real_checkpointer(make_trainer, tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.9])
    trainer = make_trainer()
    checkpointer = Checkpointer(trainer.model, str(tmp_path), trainer=trainer)
    best = BestCheckpointer(5, checkpointer, "acc", mode="max")
    trainer.register_hooks(
        [
            PeriodicCheckpointer(checkpointer, period=10, max_to_keep=1),
            best,
            EvalHook(5, lambda: {"acc": next(scores)}),
        ]
    )
    trainer.train(0, 20)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["model_0000019.pth", "model_best.pth", "model_final.pth"]
    assert (best.best_metric, best.best_iter) == (0.9, 20)  # the final evaluation, put at max_iter

    best_file = torch.load(tmp_path / "model_best.pth", weights_only=False)
    assert best_file["iteration"] == 20
    assert best_file["trainer"]["hooks"]["BestCheckpointer"] == {"best_metric": 0.9, "best_iter": 20}
    periodic = torch.load(tmp_path / "model_0000019.pth", weights_only=False)
    assert periodic["iteration"] == 19
    assert periodic["trainer"]["hooks"]["BestCheckpointer"] == {"best_metric": 0.7, "best_iter": 9}
    assert periodic["trainer"]["hooks"]["PeriodicCheckpointer"] == {"recent_checkpoints": ["model_0000019.pth"]}

    resumed = make_trainer()
    resumed_best = BestCheckpointer(5, Checkpointer(resumed.model, str(tmp_path)), "acc")
    resumed.register_hooks([resumed_best])
    resumed.load_state_dict(periodic["trainer"])
    assert (resumed.iter, resumed_best.best_metric) == (19, 0.7)


class BNRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.linear = nn.Linear(4, 1)

    def forward(self, batch):
        x, y = batch
        return {"loss": nn.functional.mse_loss(self.linear(self.bn(x)), y)}


def test_update_bn_stats_is_the_exact_average_of_batch_statistics(toy_batches):
    stream = toy_batches(batch_size=16, seed=5)
    batches = [next(stream) for _ in range(3)]
    batches = [(x * (i + 1) + i, y) for i, (x, y) in enumerate(batches)]  # distinct statistics
    model = BNRegressor().train()
    update_bn_stats(model, iter(batches), num_iters=3)
    xs = [x for x, _ in batches]
    torch.testing.assert_close(model.bn.running_mean, torch.stack([x.mean(0) for x in xs]).mean(0))
    torch.testing.assert_close(model.bn.running_var, torch.stack([x.var(0) for x in xs]).mean(0))
    assert model.bn.momentum == 0.1
    with pytest.raises(ValueError, match="ended after 3 of 5"):
        update_bn_stats(model, iter(batches), num_iters=5)


def test_precise_bn_hook_runs_after_the_last_iteration(make_trainer, toy_batches):
    stream = toy_batches(batch_size=16, seed=9)
    precise_batches = [next(stream) for _ in range(2)]
    model = BNRegressor()
    trainer = make_trainer(model=model)
    trainer.register_hooks([PreciseBN(0, model, precise_batches, num_iter=2)])
    trainer.train(0, 3)
    expected = torch.stack([x.mean(0) for x, _ in precise_batches]).mean(0)
    torch.testing.assert_close(model.bn.running_mean, expected)


class SeededBatches:
    """A loader that gives the same batches each time it is iterated, as a seeded one does."""

    def __init__(self, toy_batches):
        self._toy_batches = toy_batches

    def __iter__(self):
        stream = self._toy_batches(batch_size=16, seed=9)
        return ((x * 3 + 1, y) for x, y in stream)  # statistics unlike the training batches'


def test_precise_bn_after_a_resume_uses_the_batches_the_uninterrupted_run_uses(make_trainer, toy_batches):
    def run(start, stop, state=None):
        torch.manual_seed(0)  # the same initial weights in every run
        model = BNRegressor()
        trainer = make_trainer(model=model, data=itertools.islice(toy_batches(), start, None))
        trainer.register_hooks([PreciseBN(5, model, SeededBatches(toy_batches), num_iter=2)])
        if state is not None:
            model.load_state_dict(state["model"])
            trainer.load_state_dict(state["trainer"])
        trainer.train(start, stop)
        return trainer, {"model": copy.deepcopy(model.state_dict()), "trainer": copy.deepcopy(trainer.state_dict())}

    uninterrupted, _ = run(0, 15)
    _, state = run(0, 10)
    assert state["trainer"]["hooks"]["PreciseBN"] == {"batches_used": 4}
    resumed, _ = run(10, 15, state)
    for name, value in uninterrupted.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_precise_bn_with_ema_makes_the_ema_weights_statistics_precise(make_trainer, toy_batches):
    model = BNRegressor()
    ema = EMA(decay=0.5)
    batches = SeededBatches(toy_batches)
    trainer = make_trainer(model=model)
    trainer.register_hooks([ema, PreciseBN(0, model, batches, num_iter=2)])
    trainer.train(0, 3)
    expected = torch.stack([x.mean(0) for x, _ in itertools.islice(iter(batches), 2)]).mean(0)
    torch.testing.assert_close(ema.weights["bn.running_mean"], expected)  # what evaluation uses
    assert not torch.allclose(model.bn.running_mean, expected)  # the training weights keep theirs


def test_torch_profiler_writes_a_chrome_trace(make_trainer, tmp_path):
    trainer = make_trainer()
    trainer.register_hooks(
        [TorchProfiler(lambda t: t.iter == 1, str(tmp_path), activities=[torch.profiler.ProfilerActivity.CPU])]
    )
    trainer.train(0, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["profiler-trace-iter1.json"]
    trace = json.loads((tmp_path / "profiler-trace-iter1.json").read_text())
    assert any("linear" in event.get("name", "") for event in trace["traceEvents"])


def test_resumed_run_writes_the_same_smoothed_metrics_as_an_uninterrupted_one(make_trainer, toy_batches, tmp_path):
    """The writers' windowed medians span the resume point, so the metric histories travel in
    the trainer's state: without them the first lines after a resume would differ."""

    def run(json_path, start, stop, state=None, model_state=None):
        trainer = make_trainer(data=itertools.islice(toy_batches(), start, None))
        trainer.register_hooks([PeriodicWriter([JSONWriter(str(json_path), window_size=20)], period=5)])
        if state is not None:
            trainer.model.load_state_dict(model_state)
            trainer.load_state_dict(state)
        trainer.train(start, stop)
        return trainer.state_dict(), trainer.model.state_dict()

    def deterministic(lines):  # timings differ between runs by nature
        return [{k: v for k, v in line.items() if k != "data_time"} for line in lines]

    run(tmp_path / "full.json", 0, 30)
    state, model_state = run(tmp_path / "resumed.json", 0, 15)
    run(tmp_path / "resumed.json", 15, 30, state, copy.deepcopy(model_state))
    full, resumed = metrics_lines(tmp_path / "full.json"), metrics_lines(tmp_path / "resumed.json")
    assert [line["iteration"] for line in resumed] == [4, 9, 14, 19, 24, 29]
    assert deterministic(resumed) == deterministic(full)
