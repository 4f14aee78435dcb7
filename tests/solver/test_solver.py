import logging
import math

import pytest
import torch
from torch import nn

from usvid.config import ConfigError, get_cfg
from usvid.solver import LRMultiplier, WarmupParamScheduler, build_lr_scheduler, build_optimizer, get_clip_grad_norm


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        self.head = nn.Linear(2, 1)
        self.tied = nn.Linear(2, 2, bias=False)
        self.tied_again = self.tied  # the same parameters reachable twice
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 1.0
    cfg.SOLVER.WEIGHT_DECAY = 0.1
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    for key, value in solver.items():
        cfg.SOLVER[key] = value
    return cfg


def _hyper_params(optimizer, model):
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    names = {}
    for name, p in model.named_parameters():
        if id(p) in by_id:
            names[name] = by_id[id(p)]
    return names


def test_param_groups_norm_bias_multipliers_dedup_and_merge():
    model = Net()
    cfg = _cfg(BIAS_LR_FACTOR=2.0, WEIGHT_DECAY_BIAS=0.01, LR_MULTIPLIERS=[("backbone", 0.1)])
    optimizer = build_optimizer(cfg, model)
    assert _hyper_params(optimizer, model) == {
        "backbone.0.weight": (pytest.approx(0.1), 0.1),
        "backbone.0.bias": (pytest.approx(0.2), 0.01),
        "backbone.1.weight": (pytest.approx(0.1), 0.0),
        "backbone.1.bias": (pytest.approx(0.2), 0.0),
        "head.weight": (1.0, 0.1),
        "head.bias": (2.0, 0.01),
        "tied.weight": (1.0, 0.1),
    }
    all_params = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(all_params) == len({id(p) for p in all_params}) == 7  # frozen left out, tied once
    keys = [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    assert len(keys) == len(set(keys)) == 6  # head.weight and tied.weight share one group


def test_sgd_and_adamw_settings():
    sgd = build_optimizer(_cfg(MOMENTUM=0.8, NESTEROV=True), Net())
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.8 and sgd.defaults["nesterov"]
    adamw = build_optimizer(_cfg(OPTIMIZER="AdamW", ADAM_BETA=(0.5, 0.6)), Net())
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="'Adam'.*valid: 'SGD', 'AdamW'"):
        build_optimizer(_cfg(OPTIMIZER="Adam"), Net())


def test_cpu_parameters_take_the_fused_step_with_the_same_update():
    torch.manual_seed(0)
    fused_model, model = Net(), Net()
    model.load_state_dict(fused_model.state_dict())
    for optimizer_name, settings in (("SGD", {"momentum": 0.9}), ("AdamW", {})):
        fused = build_optimizer(_cfg(OPTIMIZER=optimizer_name, BASE_LR=0.1, MOMENTUM=0.9), fused_model)
        assert fused.defaults["fused"] is True
        groups = build_optimizer(_cfg(OPTIMIZER=optimizer_name, BASE_LR=0.1), model).param_groups
        plain_groups = [{"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]} for g in groups]
        plain = type(fused)(plain_groups, lr=0.1, **settings)  # torch's default step on CPU
        assert not plain.defaults["fused"]
        for _ in range(3):
            for net in (fused_model, model):
                net.zero_grad()
                net.head(net.backbone(torch.ones(2, 1, 4, 4)).mean(dim=(2, 3))).sum().backward()
            fused.step()
            plain.step()
        for (name, a), (_, b) in zip(fused_model.named_parameters(), model.named_parameters()):
            assert torch.allclose(a, b, atol=1e-6), name


def test_gradient_clipping_norm_goes_to_trainer_value_to_optimizer():
    cfg = _cfg()
    assert get_clip_grad_norm(cfg) is None
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 0.5
    assert get_clip_grad_norm(cfg) == 0.5
    assert type(build_optimizer(cfg, Net())) is torch.optim.SGD  # the trainer clips

    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
    cfg.SOLVER.MOMENTUM = 0.0
    cfg.SOLVER.WEIGHT_DECAY = 0.0
    assert get_clip_grad_norm(cfg) is None
    param = nn.Parameter(torch.zeros(3))
    optimizer = build_optimizer(cfg, nn.ParameterList([param]))
    param.grad = torch.tensor([2.0, -0.2, -3.0])
    optimizer.step()
    assert torch.allclose(param.detach(), torch.tensor([-0.5, 0.2, 0.5]))
    optimizer.load_state_dict(optimizer.state_dict())  # the wrapped optimizer stays checkpointable


def test_global_norm_clipping_with_inf_norm_is_done_by_optimizer():
    cfg = _cfg(MOMENTUM=0.0, WEIGHT_DECAY=0.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.NORM_TYPE = float("inf")
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
    assert get_clip_grad_norm(cfg) is None
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(cfg, nn.ParameterList([a, b]))
    a.grad, b.grad = torch.tensor([4.0]), torch.tensor([-2.0])
    optimizer.step()
    assert torch.allclose(torch.cat([a.detach(), b.detach()]), torch.tensor([-1.0, 0.5]), atol=1e-5)


def _lrs(scheduler, n):
    lrs = []
    for _ in range(n):
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_multistep_matches_hand_computed_values():
    cfg = _cfg(WARMUP_ITERS=4, WARMUP_FACTOR=0.2, STEPS=(6, 8), GAMMA=0.5, MAX_ITER=10)
    scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    expected = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert _lrs(scheduler, 10) == pytest.approx(expected)

    cfg.SOLVER.WARMUP_METHOD = "constant"
    scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    assert _lrs(scheduler, 5) == pytest.approx([0.2, 0.2, 0.2, 0.2, 1.0])


def test_warmup_cosine_matches_hand_computed_values():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", WARMUP_ITERS=2, WARMUP_FACTOR=0.5, MAX_ITER=8)
    scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    cosine = [0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(9)]
    expected = [0.5 * cosine[0], 0.75 * cosine[1]] + cosine[2:]
    assert _lrs(scheduler, 9) == pytest.approx(expected)


def test_lr_multipliers_scale_through_the_schedule():
    cfg = _cfg(WARMUP_ITERS=0, STEPS=(1,), GAMMA=0.1, MAX_ITER=3, LR_MULTIPLIERS=[("backbone", 0.5)])
    optimizer = build_optimizer(cfg, Net())
    scheduler = build_lr_scheduler(cfg, optimizer)
    optimizer.step()
    scheduler.step()
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.05, 0.05, 0.1])


def test_scheduler_state_round_trip_resumes_the_same_lrs():
    cfg = _cfg(WARMUP_ITERS=3, STEPS=(5,), MAX_ITER=10)
    reference = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    full = _lrs(reference, 10)

    first = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    _lrs(first, 4)
    resumed = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    resumed.load_state_dict(first.state_dict())
    resumed.optimizer.param_groups[0]["lr"] = resumed.get_last_lr()[0]  # as after loading the optimizer
    assert _lrs(resumed, 6) == pytest.approx(full[4:])


def test_steps_beyond_max_iter_are_warned_about_and_bad_names_rejected(caplog):
    cfg = _cfg(STEPS=(5, 50), MAX_ITER=10)
    with caplog.at_level(logging.WARNING):
        scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    assert "SOLVER.STEPS (5, 50)" in caplog.text and "MAX_ITER 10" in caplog.text
    assert scheduler.milestones == [5]
    with pytest.raises(ValueError, match="WARMUP_METHOD|warm-up method 'cubic'"):
        build_lr_scheduler(_cfg(WARMUP_METHOD="cubic"), build_optimizer(_cfg(), Net()))
    with pytest.raises(ValueError, match="LR_SCHEDULER_NAME 'Poly'"):
        build_lr_scheduler(_cfg(LR_SCHEDULER_NAME="Poly"), build_optimizer(_cfg(), Net()))


def test_warmup_cosine_ends_at_base_lr_end():
    cfg = _cfg(LR_SCHEDULER_NAME="WarmupCosineLR", WARMUP_ITERS=0, MAX_ITER=4, BASE_LR_END=0.2)
    scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    expected = [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(5)]
    assert _lrs(scheduler, 5) == pytest.approx(expected)
    assert expected[-1] == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="SOLVER.BASE_LR_END=2.0 must lie between 0 and SOLVER.BASE_LR=1.0"):
        build_lr_scheduler(_cfg(LR_SCHEDULER_NAME="WarmupCosineLR", BASE_LR_END=2.0), build_optimizer(_cfg(), Net()))


def test_warmup_step_with_fixed_gamma_decays_num_decays_times_evenly():
    cfg = _cfg(
        LR_SCHEDULER_NAME="WarmupStepWithFixedGammaLR",
        WARMUP_ITERS=2,
        WARMUP_FACTOR=0.5,
        MAX_ITER=12,
        GAMMA=0.5,
        NUM_DECAYS=2,
    )
    scheduler = build_lr_scheduler(cfg, build_optimizer(cfg, Net()))
    # Three stages of 4 iterations: 1, 0.5, 0.25; the warm-up ramps the first 2 iterations.
    expected = [0.5, 0.75, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25]
    assert _lrs(scheduler, 13) == pytest.approx(expected)


def test_lr_multiplier_follows_a_warmed_up_param_scheduler():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    halves = lambda where: 1.0 if where < 0.5 else 0.5  # noqa: E731
    schedule = WarmupParamScheduler(halves, warmup_factor=0.1, warmup_length=0.25)
    scheduler = LRMultiplier(optimizer, schedule, max_iter=8)
    # Progress 0, 1/8: linear from 0.1 to the value at 0.25 (1.0); then 1.0 until half-way, then 0.5.
    assert _lrs(scheduler, 8) == pytest.approx([0.2, 1.1, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0])

    rescaled = WarmupParamScheduler(halves, 0.1, 0.5, warmup_method="constant", rescale_interval=True)
    # The warm-up holds 0.1 for the first half; the whole schedule then runs in the second.
    assert [rescaled(w) for w in (0.0, 0.4, 0.5, 0.7, 0.8)] == pytest.approx([0.1, 0.1, 1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="warmup_length is a fraction of training in \\[0, 1\\), got 1.5"):
        WarmupParamScheduler(halves, 0.1, 1.5)

    # Starting mid-run continues the same rates (the LRScheduler hook's resume).
    mid_run = LRMultiplier(torch.optim.SGD(Net().parameters(), lr=2.0), schedule, max_iter=8, last_iter=3)
    assert _lrs(mid_run, 4) == pytest.approx([1.0, 1.0, 1.0, 1.0])
