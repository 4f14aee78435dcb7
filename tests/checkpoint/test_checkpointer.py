import itertools
import logging
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from usvid.checkpoint import Checkpointer, CheckpointLoadError, DetectionCheckpointer, PeriodicCheckpointer
from usvid.checkpoint.checkpointer import RNG_STATES_KEY
from usvid.data.samplers import TrainingSampler


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _trained_optimizer(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return opt


class Counter:
    """A stateful checkpointable standing in for the trainer / sampler."""

    def __init__(self, value=0):
        self.value = value

    def state_dict(self):
        return {"value": self.value}

    def load_state_dict(self, state):
        self.value = state["value"]


def test_round_trip_restores_model_optimizer_sampler_checkpointables_and_rng(tmp_path):
    model = _model(0)
    opt = _trained_optimizer(model)
    sampler = TrainingSampler(10, seed=4)
    stream = iter(sampler)
    [next(stream) for _ in range(13)]
    ckpt = Checkpointer(model, str(tmp_path), optimizer=opt, counter=Counter(7), sampler=sampler)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ckpt.save("model_0000009", iteration=9)
    expected_draws = (random.random(), np.random.rand(), torch.rand(1).item())
    expected_indices = [next(stream) for _ in range(12)]

    model2 = _model(1)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    counter2, sampler2 = Counter(), TrainingSampler(10, seed=0)
    ckpt2 = Checkpointer(model2, str(tmp_path), optimizer=opt2, counter=counter2, sampler=sampler2)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    rest = ckpt2.resume_or_load("", resume=True)

    assert rest == {"iteration": 9}
    assert counter2.value == 7
    assert list(itertools.islice(iter(sampler2), 12)) == expected_indices
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    momentum = [opt2.state[p]["momentum_buffer"] for p in model2.parameters()]
    assert all(
        torch.equal(m1, m2) for m1, m2 in zip([opt.state[p]["momentum_buffer"] for p in model.parameters()], momentum)
    )
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected_draws


def test_loading_weights_only_keeps_the_random_streams_of_this_run(tmp_path):
    saved, model = _model(0), _model(1)
    torch.manual_seed(123)
    Checkpointer(saved, str(tmp_path)).save("model_final", iteration=99)
    torch.manual_seed(999)
    expected = torch.rand(3)
    torch.manual_seed(999)
    Checkpointer(model, str(tmp_path)).resume_or_load(str(tmp_path / "model_final.pth"), resume=False)
    for name, value in saved.state_dict().items():  # the weights were loaded...
        assert torch.equal(model.state_dict()[name], value), name
    assert torch.equal(torch.rand(3), expected)  # ...but not the saved RNG state


def test_save_is_atomic_and_tags_last_checkpoint(tmp_path):
    ckpt = Checkpointer(_model(), str(tmp_path))
    ckpt.save("first")
    ckpt.save("second")
    assert sorted(os.listdir(tmp_path)) == ["first.pth", "last_checkpoint", "second.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "second.pth"
    assert ckpt.get_checkpoint_file() == str(tmp_path / "second.pth")
    assert ckpt.get_all_checkpoint_files() == [str(tmp_path / "first.pth"), str(tmp_path / "second.pth")]


def test_failed_save_leaves_previous_file_intact_and_no_temp_file(tmp_path):
    class Broken:
        def state_dict(self):
            return {"unpicklable": lambda: None}

    model = _model()
    Checkpointer(model, str(tmp_path)).save("model_final")
    before = (tmp_path / "model_final.pth").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises, the old file must stay
        Checkpointer(model, str(tmp_path), broken=Broken()).save("model_final")
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_final.pth"]


def test_ddp_prefix_plain_state_dict_and_mismatch_table(tmp_path, caplog):
    source = _model(0)
    state = {"module." + k: v for k, v in source.state_dict().items()}
    state["module.2.weight"] = torch.zeros(7, 4)  # wrong shape: skipped, reported
    state["module.extra"] = torch.zeros(1)
    path = tmp_path / "plain.pth"
    torch.save(state, path)

    target = _model(1)
    original_head = target[2].weight.clone()
    with caplog.at_level(logging.WARNING):
        rest = Checkpointer(target).load(str(path))
    assert rest == {}
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[2].weight, original_head)
    assert "2.weight" in caplog.text and "shape mismatch" in caplog.text and "(7, 4)" in caplog.text
    assert "extra" in caplog.text and "unexpected" in caplog.text
    assert "missing" not in caplog.text  # the mismatched key is reported once, as a mismatch


def test_strict_loads_and_resumes_refuse_a_checkpoint_of_another_model(tmp_path, caplog):
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 5))  # another head
    Checkpointer(other, str(tmp_path)).save("model_final", iteration=9)
    target = _model(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointLoadError, match=r"model_final.pth does not fit this model \(2 of 9 .*2.weight"):
        Checkpointer(target).load(str(tmp_path / "model_final.pth"), strict=True)
    with pytest.raises(CheckpointLoadError, match="MODEL.META_ARCHITECTURE"):
        Checkpointer(target, str(tmp_path)).resume_or_load("", resume=True)
    for name, value in target.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[name]), name
    with caplog.at_level(logging.WARNING):
        Checkpointer(target, str(tmp_path / "empty")).resume_or_load("", resume=True)
    assert "has no last_checkpoint" in caplog.text and "no weights given" in caplog.text


def test_a_resume_that_cannot_restore_a_checkpointable_says_so(tmp_path, caplog):
    Checkpointer(_model(0), str(tmp_path), trainer=Counter(5)).save("model_0000004", iteration=4)
    counter = Counter(1)
    resumer = Checkpointer(_model(1), str(tmp_path), optimizer=_trained_optimizer(_model(1)), counter=counter)
    with caplog.at_level(logging.WARNING):
        rest = resumer.resume_or_load("", resume=True)
    assert rest["iteration"] == 4 and counter.value == 1
    assert "holds no state for ['optimizer', 'counter']" in caplog.text and "'trainer'" in caplog.text


def test_unreadable_checkpoint_messages_name_the_problem_without_unsafe_advice(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(
        CheckpointLoadError, match="garbage.pth: the file is truncated or not a torch checkpoint"
    ) as info:
        Checkpointer(_model()).load(str(garbage))
    assert "weights_only" not in str(info.value)  # torch's advice to unpickle anyway is not passed on
    with pytest.raises(FileNotFoundError, match="is a folder, not a checkpoint file"):
        Checkpointer(_model()).load(str(tmp_path))


def test_resume_false_loads_weights_only(tmp_path):
    model = _model(0)
    Checkpointer(model, str(tmp_path / "a"), counter=Counter(3)).save("weights", iteration=4)
    counter = Counter()
    target = Checkpointer(_model(1), str(tmp_path / "b"), counter=counter)
    rest = target.resume_or_load(str(tmp_path / "a" / "weights.pth"), resume=True)
    assert counter.value == 0 and rest["iteration"] == 4
    assert torch.equal(target.model[0].weight, model[0].weight)


def test_truncated_file_gives_an_error_naming_it(tmp_path):
    Checkpointer(_model(), str(tmp_path)).save("model_final")
    path = tmp_path / "model_final.pth"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointLoadError, match="model_final.pth.*truncated"):
        Checkpointer(_model(), str(tmp_path)).resume_or_load("", resume=True)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        Checkpointer(_model()).load(str(tmp_path / "nowhere.pth"))


class _RunsCodeWhenUnpickled:
    """A pickle payload: unpickling it would create a file (stands in for any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_holding_objects_is_refused_without_running_them(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": _model().state_dict(), "payload": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(CheckpointLoadError, match="evil.pth.*plain data"):
        Checkpointer(_model()).load(str(path))
    assert not marker.exists()


def test_checkpoints_with_the_numpy_rng_state_as_an_array_still_resume(tmp_path):
    # Checkpoints written before the RNG state was stored as lists hold numpy's key array.
    model = _model(0)
    Checkpointer(model, str(tmp_path)).save("model_0000004", iteration=4)
    path = tmp_path / "model_0000004.pth"
    checkpoint = torch.load(path, weights_only=False)
    np.random.seed(11)
    checkpoint[RNG_STATES_KEY][0]["numpy"] = np.random.get_state()
    expected = np.random.rand()
    torch.save(checkpoint, path)
    np.random.seed(0)
    assert Checkpointer(_model(1), str(tmp_path)).resume_or_load("", resume=True)["iteration"] == 4
    assert np.random.rand() == expected


def test_periodic_checkpointer_keeps_recent_files_across_resume(tmp_path):
    ckpt = Checkpointer(_model(), str(tmp_path))
    periodic = PeriodicCheckpointer(ckpt, period=2, max_iter=9, max_to_keep=2)
    ckpt.add_checkpointable("periodic", periodic)
    for it in range(6):
        periodic.step(it)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000003.pth", "model_0000005.pth"]

    resumed = PeriodicCheckpointer(Checkpointer(_model(), str(tmp_path)), period=2, max_iter=9, max_to_keep=2)
    resumed.checkpointer.add_checkpointable("periodic", resumed)
    assert resumed.checkpointer.resume_or_load("")["iteration"] == 5
    assert resumed.recent_checkpoints == ["model_0000003.pth", "model_0000005.pth"]
    for it in range(6, 9):
        resumed.step(it)
    assert sorted(os.listdir(tmp_path)) == [
        "last_checkpoint",
        "model_0000005.pth",
        "model_0000007.pth",
        "model_final.pth",
    ]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


def test_a_model_with_lazy_modules_loads_and_resumes_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    trained = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    trained(torch.randn(5, 3))  # materialises the lazy parameters: (4, 3) and (2, 4)
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.1)
    Checkpointer(trained, str(tmp_path), optimizer=optimizer).save("model_0000004", iteration=4)

    fresh = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))  # never called: uninitialised
    Checkpointer(fresh, str(tmp_path)).load(str(tmp_path / "model_0000004.pth"), strict=True)
    for name, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name

    resumed = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    resumed(torch.randn(1, 3))  # the usual order: a dry run builds the parameters, then the optimizer
    resumed_optimizer = torch.optim.SGD(resumed.parameters(), lr=0.1)
    extra = Checkpointer(resumed, str(tmp_path), optimizer=resumed_optimizer).resume_or_load("", resume=True)
    assert extra["iteration"] == 4
    assert torch.equal(resumed[2].weight, trained[2].weight)


class _SharedLinear(nn.Module):
    """``y`` is ``x`` registered a second time (detectron2's and fvcore's shared-parameter case)."""

    def __init__(self, share: bool):
        super().__init__()
        self.x = nn.Linear(3, 3)
        if share:
            self.y = self.x


def test_parameters_shared_by_two_submodules_are_not_reported_missing(tmp_path, caplog):
    saved = _SharedLinear(share=False)
    with torch.no_grad():
        saved.x.bias.fill_(5.0)
    Checkpointer(saved, str(tmp_path)).save("model_final")

    model = _SharedLinear(share=True)
    with caplog.at_level(logging.WARNING, logger="usvid.checkpoint.checkpointer"):
        Checkpointer(model, str(tmp_path)).load(str(tmp_path / "model_final.pth"), strict=True)
    assert torch.equal(model.y.bias, torch.full((3,), 5.0))
    assert "not loaded" not in caplog.text

    # A checkpoint without the tensor under either name still reports both names.
    torch.save({"model": {"z": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointLoadError, match="x.weight: missing in checkpoint"):
        Checkpointer(_SharedLinear(share=True), str(tmp_path)).load(str(tmp_path / "other.pth"), strict=True)


def test_detection_checkpointer_is_detectron2s_name_for_the_checkpointer(tmp_path):
    model = _model(0)
    DetectionCheckpointer(model, str(tmp_path)).save("model_final", iteration=3)
    loaded = _model(1)
    assert DetectionCheckpointer(loaded, str(tmp_path)).resume_or_load("", resume=True) == {"iteration": 3}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
