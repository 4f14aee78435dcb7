"""Every YAML config loads on top of the default tree and builds its model."""

from pathlib import Path

import pytest

from usvid.config import add_ultrasound_config, get_cfg
from usvid.modeling import META_ARCH_REGISTRY

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIG_FILES = sorted(CONFIG_DIR.glob("**/*.yaml"))
MODEL_CONFIGS = ["phantom/ultradet.yaml", "phantom/fcos.yaml", "cva_bus/ultradet_r34.yaml"]


def load(path):
    cfg = add_ultrasound_config(get_cfg())
    cfg.merge_from_file(str(path))
    return cfg


def test_the_model_configs_exist():
    assert {str(p.relative_to(CONFIG_DIR)) for p in CONFIG_FILES} >= set(MODEL_CONFIGS + ["Base-UltraDet.yaml"])


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_loads_and_names_a_registered_model(path):
    cfg = load(path)
    assert cfg.MODEL.META_ARCHITECTURE in META_ARCH_REGISTRY


def test_phantom_configs_are_cpu_sized_and_equal_budget():
    ultradet, fcos = load(CONFIG_DIR / "phantom/ultradet.yaml"), load(CONFIG_DIR / "phantom/fcos.yaml")
    assert (ultradet.MODEL.META_ARCHITECTURE, fcos.MODEL.META_ARCHITECTURE) == ("UltraDet", "SingleFrameFCOS")
    assert ultradet.DATASETS.TRAIN == ("phantom_trainval",) and ultradet.DATASETS.TEST == ("phantom_test",)
    assert ultradet.SOLVER.OPTIMIZER == "AdamW"
    for key in ("SOLVER", "INPUT", "DATASETS"):
        assert ultradet[key] == fcos[key]
    assert ultradet.MODEL.RESNETS.RES2_OUT_CHANNELS <= 32


def test_paper_config_is_resnet34_full_width():
    cfg = load(CONFIG_DIR / "cva_bus/ultradet_r34.yaml")
    assert cfg.MODEL.RESNETS.DEPTH == 34 and cfg.MODEL.RESNETS.RES2_OUT_CHANNELS == 64
    assert cfg.INPUT.FIXED_AREA_TRAIN == 900000
    assert (cfg.SOLVER.SEGS_PER_BATCH, cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES) == (8, 16)
    assert (cfg.SOLVER.OPTIMIZER, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER) == ("AdamW", 0.0002, 10000)


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_config_builds_its_model(name):
    from usvid.modeling import build_model

    cfg = load(CONFIG_DIR / name)
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    assert type(model).__name__ == cfg.MODEL.META_ARCHITECTURE
    assert model.device.type == "cpu"
    assert model.backbone.conv1.in_channels == len(cfg.MODEL.PIXEL_MEAN)


def test_the_phantom_ultradet_gradients_repeat_bitwise_with_deterministic_kernels(make_clip):
    """What DETERMINISTIC promises for the default model on 2 CPU threads: every op has a
    deterministic kernel (none raises), and repeated steps give bitwise-equal gradients (without
    it, the backbone's weight gradients differ in the last bits from one pass to the next)."""
    import torch

    from usvid.modeling import build_model

    cfg = load(CONFIG_DIR / "phantom/ultradet.yaml")
    cfg.MODEL.DEVICE = "cpu"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(0)
        model = build_model(cfg).train()
        clips = [make_clip(5, size=(352, 352), boxes=((100.0, 120.0, 140.0, 150.0),), seed=c) for c in range(2)]

        def gradients():
            torch.manual_seed(5)  # the jittered GT candidates are random
            model.zero_grad()
            sum(model(clips).values()).backward()
            return [p.grad.clone() for p in model.parameters() if p.grad is not None]

        first = gradients()
        for _ in range(3):
            assert all(torch.equal(a, b) for a, b in zip(first, gradients()))
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
