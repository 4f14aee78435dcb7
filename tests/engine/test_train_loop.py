"""TrainerBase / SimpleTrainer / AMPTrainer behaviour on the toy regression problem."""

import math

import pytest
import torch
from torch import nn

from usvid.engine import AMPTrainer, CallbackHook, EarlyStopping, HookBase, SimpleTrainer, TrainerBase, amp_trainer
from usvid.engine.amp_trainer import autocast_precision, slow_bfloat16_reason


class RecordingHook(HookBase):
    """Records every callback with the trainer's and the storage's iteration."""

    def __init__(self, log, tag="h", priority=50):
        self.log = log
        self.tag = tag
        self.priority = priority

    def _record(self, event):
        self.log.append((self.tag, event, self.trainer.iter, self.trainer.storage.iter))

    def before_train(self):
        self._record("before_train")

    def after_train(self):
        self._record("after_train")

    def before_step(self):
        self._record("before_step")

    def after_backward(self):
        self._record("after_backward")

    def after_step(self):
        self._record("after_step")


def test_hook_call_order_and_iteration_numbering(make_trainer):
    log = []
    trainer = make_trainer()
    trainer.register_hooks([RecordingHook(log)])
    trainer.train(5, 7)
    assert [(event, it, storage_it) for _, event, it, storage_it in log] == [
        ("before_train", 5, 5),
        ("before_step", 5, 5),
        ("after_backward", 5, 5),
        ("after_step", 5, 5),
        ("before_step", 6, 6),
        ("after_backward", 6, 6),
        ("after_step", 6, 6),
        ("after_train", 7, 7),  # iter == max_iter tells after_train that training finished
    ]
    assert trainer.iter == 7 and trainer.start_iter == 5 and trainer.max_iter == 7


def test_exception_runs_after_train_and_propagates(make_trainer, scripted_loss_model, usvid_logs):
    def losses(call, loss):
        if call == 4:
            raise RuntimeError("boom in forward")
        return {"loss": loss}

    log = []
    trainer = make_trainer(model=scripted_loss_model(losses))
    trainer.register_hooks([RecordingHook(log)])
    with pytest.raises(RuntimeError, match="boom in forward"):
        trainer.train(0, 10)
    assert log[-1][1:3] == ("after_train", 3)  # the failing iteration, so no final evaluation
    assert "Exception during training at iteration 3" in usvid_logs.text


def test_priorities_sort_stably_across_register_calls(make_trainer):
    log = []
    trainer = make_trainer()
    trainer.register_hooks([RecordingHook(log, "a50"), RecordingHook(log, "b10", 10), None])
    trainer.register_hooks([RecordingHook(log, "c50"), RecordingHook(log, "d10", 10), RecordingHook(log, "e90", 90)])
    assert [h.tag for h in trainer.hooks] == ["b10", "d10", "a50", "c50", "e90"]
    trainer.train(0, 1)
    assert [tag for tag, event, *_ in log if event == "after_step"] == ["b10", "d10", "a50", "c50", "e90"]


def test_should_stop_ends_training_cleanly_after_the_current_step(make_trainer):
    steps = []
    trainer = make_trainer()
    trainer.register_hooks(
        [CallbackHook(after_step=lambda t: (steps.append(t.iter), setattr(t, "should_stop", t.iter == 4)))]
    )
    trainer.train(0, 100)
    assert steps == [0, 1, 2, 3, 4]
    assert trainer.iter == 5


def test_state_round_trip_keeps_two_hooks_of_one_class(make_trainer, usvid_logs):
    trainer = make_trainer()
    first, second = EarlyStopping("acc", patience=3), EarlyStopping("loss", mode="min", patience=3)
    trainer.register_hooks([first, second])
    first.best, first.num_bad_evals = 0.8, 1
    second.best, second.num_bad_evals = 0.2, 2
    trainer.iter = 41
    state = trainer.state_dict()
    assert set(state["hooks"]) == {"EarlyStopping", "EarlyStopping#1"}
    assert state["iteration"] == 41 and "optimizer" in state

    restored = make_trainer()
    new_first, new_second = EarlyStopping("acc", patience=3), EarlyStopping("loss", mode="min", patience=3)
    restored.register_hooks([new_first, new_second])
    restored.load_state_dict(state)
    assert restored.iter == 41
    assert (new_first.best, new_first.num_bad_evals) == (0.8, 1)
    assert (new_second.best, new_second.num_bad_evals) == (0.2, 2)

    only_one = make_trainer()
    only_one.register_hooks([EarlyStopping("acc", patience=3)])
    only_one.load_state_dict(state)
    assert "EarlyStopping#1" in usvid_logs.text and "will not be restored" in usvid_logs.text


def test_nan_loss_raises_naming_iteration_and_every_loss_before_the_step(make_trainer, scripted_loss_model):
    def losses(call, loss):  # NaN at the 3rd call, i.e. iteration 2
        return {"loss_good": loss, "loss_bad": loss * float("nan") if call == 3 else loss * 0.5}

    model = scripted_loss_model(losses)
    snapshots = []
    trainer = make_trainer(model=model)
    trainer.register_hooks([CallbackHook(after_step=lambda t: snapshots.append(model.linear.weight.clone()))])
    with pytest.raises(FloatingPointError) as err:
        trainer.train(0, 10)
    message = str(err.value)
    assert "iteration=2" in message and "loss_good" in message and "loss_bad" in message and "nan" in message
    assert len(snapshots) == 2
    assert torch.equal(model.linear.weight, snapshots[-1])  # the NaN step did not touch the weights


def test_metrics_are_gathered_every_period_and_on_the_last_iteration(make_trainer):
    trainer = make_trainer(gather_metric_period=4)
    trainer.train(0, 10)
    history = trainer.storage.history("total_loss").values()
    assert [it for _, it in history] == [3, 7, 9]
    names = set(trainer.storage.histories())
    assert names == {"total_loss", "loss_mse", "loss_l1", "data_time"}
    value, it = history[-1]
    loss_mse = trainer.storage.history("loss_mse").latest()
    loss_l1 = trainer.storage.history("loss_l1").latest()
    assert value == pytest.approx(loss_mse + loss_l1)


def test_gradient_accumulation_equals_one_large_batch(make_trainer, toy_batches):
    small = toy_batches(batch_size=8, seed=3)
    micro_batches = [next(small) for _ in range(4)]
    large_batch = (torch.cat([b[0] for b in micro_batches]), torch.cat([b[1] for b in micro_batches]))

    def one_iteration(data, grad_accum_steps):
        grads = {}
        trainer = make_trainer(data=iter(data), grad_accum_steps=grad_accum_steps)
        trainer.register_hooks(
            [
                CallbackHook(
                    after_backward=lambda t: grads.update({n: p.grad.clone() for n, p in t.model.named_parameters()})
                )
            ]
        )
        trainer.train(0, 1)
        return grads, dict(trainer.model.named_parameters()), trainer.storage.history("loss_mse").latest()

    accum_grads, accum_params, accum_loss = one_iteration(micro_batches, 4)
    big_grads, big_params, big_loss = one_iteration([large_batch], 1)
    for name in big_grads:
        torch.testing.assert_close(accum_grads[name], big_grads[name], atol=1e-6, rtol=0)
        torch.testing.assert_close(accum_params[name], big_params[name], atol=1e-6, rtol=0)
    assert accum_loss == pytest.approx(big_loss, abs=1e-6)


def test_clip_grad_norm_clips_the_global_norm_and_logs_it(make_trainer, toy_batches):
    batch = next(toy_batches())
    reference = make_trainer()
    reference.model(batch)["loss_mse"].add(reference.model(batch)["loss_l1"]).backward()
    expected_norm = torch.nn.utils.get_total_norm([p.grad for p in reference.model.parameters()]).item()

    trainer = make_trainer(data=iter([batch]), clip_grad_norm=0.01, lr=1.0)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train(0, 1)
    assert trainer.storage.history("grad_norm").latest() == pytest.approx(expected_norm, rel=1e-5)
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, trainer.model.parameters())])
    assert step.norm().item() == pytest.approx(0.01, rel=1e-4)  # lr 1.0: the step is the clipped gradient


def test_amp_bf16_step_on_cpu(toy_model, toy_batches):
    dtypes = []
    toy_model.linear.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    optimizer = torch.optim.SGD(toy_model.parameters(), lr=0.05)
    before = toy_model.linear.weight.detach().clone()
    trainer = AMPTrainer(toy_model, toy_batches(), optimizer, precision=torch.bfloat16)
    trainer.train(0, 3)
    assert dtypes == [torch.bfloat16] * 3
    assert toy_model.linear.weight.dtype == torch.float32
    assert not torch.equal(toy_model.linear.weight, before)
    assert trainer.grad_scaler is None and "grad_scaler" not in trainer.state_dict()
    assert math.isfinite(trainer.storage.history("total_loss").latest())


@pytest.mark.parametrize(
    "flags, warned",
    [("fpu sse2 avx2 fma", True), ("fpu avx512f avx512_bf16", False), ("fpu amx_tile amx_bf16", False)],
)
def test_bf16_on_a_cpu_without_native_bf16_is_warned_about(
    toy_model, toy_batches, tmp_path, monkeypatch, usvid_logs, flags, warned
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(amp_trainer, "CPUINFO", str(cpuinfo))
    AMPTrainer(toy_model, toy_batches(), torch.optim.SGD(toy_model.parameters(), lr=0.05), precision=torch.bfloat16)
    slow = [r.getMessage() for r in usvid_logs.records if "slower than float32" in r.getMessage()]
    assert len(slow) == warned
    if warned:
        assert "avx512_bf16" in slow[0] and str(cpuinfo) in slow[0] and "SOLVER.AMP.ENABLED False" in slow[0]
    monkeypatch.setattr(amp_trainer, "CPUINFO", str(tmp_path / "missing"))  # no /proc (macOS): no guess
    assert slow_bfloat16_reason("cpu") is None


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse2 avx2 fma", None),
        ("fpu avx512f avx512_bf16", torch.bfloat16),
        ("fpu amx_tile amx_bf16", torch.bfloat16),
    ],
)
def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(amp_trainer, "CPUINFO", str(cpuinfo))
    precision, why = autocast_precision(True, "auto", "cpu")
    assert precision is expected and str(cpuinfo) in why
    # Named precisions and a disabled AMP ignore the CPU.
    assert autocast_precision(True, "bfloat16", "cpu")[0] is torch.bfloat16
    assert autocast_precision(False, "auto", "cpu") == (None, "SOLVER.AMP.ENABLED is False")
    monkeypatch.setattr(amp_trainer, "CPUINFO", str(tmp_path / "missing"))  # cannot tell: float32, the safe side
    assert autocast_precision(True, "auto", "cpu")[0] is None
    with pytest.raises(ValueError, match=r"SOLVER.AMP.PRECISION is 'bf16'; valid: \['bfloat16', 'float16', 'auto'\]"):
        autocast_precision(True, "bf16", "cpu")


def test_amp_fp16_uses_a_grad_scaler_whose_state_is_checkpointed(toy_batches):
    model = nn.Sequential(nn.Linear(4, 1))
    trainer = AMPTrainer(
        _LossWrapper(model), toy_batches(), torch.optim.SGD(model.parameters(), lr=0.01), precision=torch.float16
    )
    trainer.train(0, 2)
    state = trainer.state_dict()
    assert "scale" in state["grad_scaler"]
    with pytest.raises(ValueError, match="bfloat16"):
        AMPTrainer(model, toy_batches(), torch.optim.SGD(model.parameters(), lr=0.01), precision=torch.float32)


class _LossWrapper(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, batch):
        x, y = batch
        return {"loss": nn.functional.mse_loss(self.net(x).float(), y)}


def test_trainer_base_requires_run_step_and_model_must_return_a_dict(make_trainer):
    with pytest.raises(NotImplementedError):
        TrainerBase().train(0, 1)
    trainer = make_trainer(model=_ReturnsList())
    with pytest.raises(TypeError, match="dict of scalar loss tensors \\(or one loss tensor\\).*got list"):
        trainer.train(0, 1)
    with pytest.raises(ValueError, match="grad_accum_steps"):
        SimpleTrainer(_ReturnsList(), [], torch.optim.SGD(_ReturnsList().parameters(), lr=0.1), grad_accum_steps=0)


class _ReturnsList(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, batch):
        return [self.linear(batch[0]).mean()]


def test_an_empty_range_leaves_iter_at_max_iter():
    class NoStep(TrainerBase):
        def run_step(self):
            raise AssertionError("no step should run")

    seen = []
    trainer = NoStep()
    trainer.register_hooks([CallbackHook(after_train=lambda t: seen.append(t.iter))])
    trainer.train(5, 5)
    assert seen == [5] and trainer.iter == 5


def test_a_hook_has_no_trainer_until_registered(make_trainer):
    hook = HookBase()
    assert hook.trainer is None
    trainer = make_trainer()
    trainer.register_hooks([hook])
    assert hook.trainer.iter == trainer.iter


class BareLossRegressor(nn.Module):
    """Returns its loss as one tensor, not a dict."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.linear(x), y)


def test_a_model_returning_a_bare_loss_tensor_trains_with_it_as_total_loss(make_trainer):
    trainer = make_trainer(model=BareLossRegressor())
    trainer.train(0, 30)
    losses = [value for value, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == 30 and losses[-1] < losses[0] / 2
    assert set(trainer.storage.histories()) == {"total_loss", "data_time"}
