"""ResNet backbone shapes, freezing, norms and loading torchvision-layout weights by name."""

import pytest
import torch

from usvid.layers import FrozenBatchNorm2d
from usvid.modeling.backbone import ResNet, TopDownP3, load_torchvision_resnet_weights, make_res_stage

TORCHVISION_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def torchvision_resnet_state_dict(depth, width=64, in_channels=3, seed=0):
    """The key names and shapes of torchvision.models.resnet{depth}().state_dict(), written out
    from torchvision's layout (conv1/bn1, layerN.M.{conv1,bn1,conv2,bn2,downsample.0/1}, fc),
    with random values so that a correct copy is detectable."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    def bn(prefix, channels):
        return {
            f"{prefix}.weight": rand(channels),
            f"{prefix}.bias": rand(channels),
            f"{prefix}.running_mean": rand(channels),
            f"{prefix}.running_var": rand(channels).abs() + 0.5,
            f"{prefix}.num_batches_tracked": torch.tensor(7),
        }

    state = {"conv1.weight": rand(width, in_channels, 7, 7), **bn("bn1", width)}
    channels = width
    for stage, blocks in enumerate(TORCHVISION_BLOCKS[depth]):
        out = width * 2**stage
        for block in range(blocks):
            prefix = f"layer{stage + 1}.{block}"
            block_in = channels if block == 0 else out
            state[f"{prefix}.conv1.weight"] = rand(out, block_in, 3, 3)
            state.update(bn(f"{prefix}.bn1", out))
            state[f"{prefix}.conv2.weight"] = rand(out, out, 3, 3)
            state.update(bn(f"{prefix}.bn2", out))
            if block == 0 and (stage > 0):
                state[f"{prefix}.downsample.0.weight"] = rand(out, block_in, 1, 1)
                state.update(bn(f"{prefix}.downsample.1", out))
        channels = out
    state["fc.weight"] = rand(1000, channels)
    state["fc.bias"] = rand(1000)
    return state


@pytest.mark.parametrize("depth,channels", [(18, 1), (34, 3)])
def test_res4_has_stride_16_and_4x_base_width(depth, channels):
    backbone = ResNet(depth, in_channels=channels, stem_out_channels=8, res2_out_channels=8).eval()
    out = backbone(torch.randn(2, channels, 96, 80))["res4"]
    assert out.shape == (2, 32, 6, 5)
    assert backbone.output_channels("res4") == 32 and backbone.output_stride("res4") == 16
    assert backbone.res5_blocks == TORCHVISION_BLOCKS[depth][3]


def test_unknown_depth_names_the_key():
    with pytest.raises(ValueError, match="MODEL.RESNETS.DEPTH=50"):
        ResNet(50)


@pytest.mark.parametrize("norm", ["BN", "FrozenBN", "GN", ""])
def test_every_norm_runs(norm):
    backbone = ResNet(18, in_channels=1, stem_out_channels=8, res2_out_channels=8, norm=norm)
    assert backbone(torch.randn(1, 1, 64, 64))["res4"].shape == (1, 32, 4, 4)


def test_freeze_at_2_freezes_stem_and_res2_only():
    backbone = ResNet(18, in_channels=1, stem_out_channels=8, res2_out_channels=8, freeze_at=2)
    assert not any(p.requires_grad for p in backbone.conv1.parameters())
    assert not any(p.requires_grad for p in backbone.layer1.parameters())
    assert all(p.requires_grad for p in backbone.layer2.parameters())
    assert isinstance(backbone.bn1, FrozenBatchNorm2d)
    assert isinstance(backbone.layer1[0].bn1, FrozenBatchNorm2d)
    assert isinstance(backbone.layer2[0].bn1, torch.nn.BatchNorm2d)


@pytest.mark.parametrize("depth", [18, 34])
def test_full_width_backbone_and_res5_load_every_torchvision_tensor(depth):
    source = torchvision_resnet_state_dict(depth)
    backbone = ResNet(depth, in_channels=3, norm="FrozenBN")
    res5 = make_res_stage(TORCHVISION_BLOCKS[depth][3], 256, 512, 2, "FrozenBN")
    report = load_torchvision_resnet_weights(backbone, {"module." + k: v for k, v in source.items()}, res5=res5)
    assert report["missing_keys"] == [] and report["unexpected_keys"] == [] and report["shape_mismatch"] == []
    assert "fc.weight" not in report["loaded"]
    assert torch.equal(backbone.conv1.weight, source["conv1.weight"])
    assert torch.equal(backbone.layer3[1].bn2.running_var, source["layer3.1.bn2.running_var"])
    assert torch.equal(backbone.layer2[0].downsample[0].weight, source["layer2.0.downsample.0.weight"])
    assert torch.equal(res5[0].conv1.weight, source["layer4.0.conv1.weight"])


def test_grayscale_stem_sums_rgb_filters_and_keeps_the_response():
    source = torchvision_resnet_state_dict(18)
    backbone = ResNet(18, in_channels=1, norm="BN")
    report = load_torchvision_resnet_weights(backbone, source)
    assert "conv1.weight" in report["loaded"]
    assert any(k.startswith("layer4.") for k in report["unexpected_keys"])  # no res5 given
    grey = torch.rand(1, 1, 32, 32)
    rgb_response = torch.nn.functional.conv2d(grey.expand(1, 3, 32, 32), source["conv1.weight"], stride=2, padding=3)
    assert torch.allclose(backbone.conv1(grey), rgb_response, atol=1e-4)


def test_reduced_width_reports_shape_mismatches_and_keeps_its_weights():
    backbone = ResNet(18, in_channels=1, stem_out_channels=16, res2_out_channels=16)
    before = backbone.conv1.weight.clone()
    report = load_torchvision_resnet_weights(backbone, torchvision_resnet_state_dict(18))
    assert ("conv1.weight", (64, 1, 7, 7), (16, 1, 7, 7)) in report["shape_mismatch"]
    assert report["loaded"] == []
    assert torch.equal(backbone.conv1.weight, before)


@pytest.mark.parametrize("in_feature, stride", [("res4", 16), ("p3", 8)])
def test_the_fcos_input_feature_sets_the_head_stride(tiny_cfg, in_feature, stride):
    from usvid.modeling import build_model

    model = build_model(tiny_cfg("SingleFrameFCOS", **{"MODEL.FCOS.IN_FEATURE": in_feature}))
    features = model._head_input(torch.randn(2, 1, 64, 96))
    channels = model.backbone.output_channels("res4")
    assert model.head.stride == stride and features.shape == (2, channels, 64 // stride, 96 // stride)
    assert (model.top_down is None) == (in_feature == "res4")  # no P3 weights unless a head reads P3


@pytest.mark.parametrize("fcos_feature, roi_feature", [("res4", "p3"), ("p3", "res4"), ("p3", "p3")])
def test_ultradet_reads_each_heads_feature_level_and_builds_p3_once(tiny_cfg, fcos_feature, roi_feature):
    from usvid.modeling import build_model

    model = build_model(
        tiny_cfg("UltraDet", **{"MODEL.FCOS.IN_FEATURE": fcos_feature, "MODEL.ROI_BOX_HEAD.IN_FEATURE": roi_feature})
    )
    stride = {"res4": 16, "p3": 8}
    assert model.proposal_generator.stride == stride[fcos_feature]
    assert model.roi_heads.pooler.spatial_scale == 1 / stride[roi_feature]
    assert sum(1 for m in model.modules() if isinstance(m, TopDownP3)) == 1
    features, _ = model._features(torch.randn(2, 1, 64, 96))
    assert features["p3"].shape == features["res4"].shape[:2] + (8, 12)


@pytest.mark.parametrize("key", ["MODEL.FCOS.IN_FEATURE", "MODEL.ROI_BOX_HEAD.IN_FEATURE"])
def test_an_unknown_feature_level_names_the_key_and_the_valid_ones(tiny_cfg, key):
    from usvid.modeling import build_model

    with pytest.raises(ValueError, match=rf"{key}='res5'.*\['res4', 'p3'\]"):
        build_model(tiny_cfg("UltraDet", **{key: "res5"}))
