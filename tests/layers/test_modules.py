"""ConvLSTMCell, FrozenBatchNorm2d / convert_frozen_batchnorm, get_norm, Conv2d, ShapeSpec."""

import pytest
import torch
from torch import nn

from usvid.layers import Conv2d, ConvLSTMCell, FrozenBatchNorm2d, ShapeSpec, convert_frozen_batchnorm, get_norm


def test_conv_lstm_shapes_and_state_propagation():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 5, kernel_size=3)
    frames = torch.randn(4, 2, 3, 6, 7)
    h, c = cell(frames[0])
    assert h.shape == c.shape == (2, 5, 6, 7)
    zeros = torch.zeros(2, 5, 6, 7)
    torch.testing.assert_close(cell(frames[0], (zeros, zeros))[0], h)  # None means zero state
    state = (h, c)
    for frame in frames[1:]:
        state = cell(frame, state)
    # The last output depends on earlier frames only through the state.
    fresh = cell(frames[-1])
    assert not torch.allclose(state[0], fresh[0])
    # Hand-check one step on a 1x1 kernel: the LSTM equations per pixel.
    one = ConvLSTMCell(1, 1, kernel_size=1)
    with torch.no_grad():
        # Row k: (weight on x, weight on h) of gate k in the order input, forget, output, candidate.
        one.gates.weight.copy_(torch.tensor([[1.0, 0.5], [2.0, 0.5], [3.0, 0.5], [4.0, 0.5]]).view(4, 2, 1, 1))
    x, h0, c0 = torch.full((1, 1, 1, 1), 0.3), torch.full((1, 1, 1, 1), -0.2), torch.full((1, 1, 1, 1), 0.7)
    i, f, o, g = (torch.tensor([0.3 * w + -0.2 * 0.5 + b]) for w, b in zip([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 0.0]))
    c1 = torch.sigmoid(f) * 0.7 + torch.sigmoid(i) * torch.tanh(g)
    h1 = torch.sigmoid(o) * torch.tanh(c1)
    h, c = one(x, (h0, c0))
    torch.testing.assert_close(c.flatten(), c1)
    torch.testing.assert_close(h.flatten(), h1)


def test_conv_lstm_rejects_bad_shapes():
    cell = ConvLSTMCell(3, 4)
    with pytest.raises(ValueError, match="\\[N, 3, H, W\\]"):
        cell(torch.zeros(1, 2, 5, 5))
    with pytest.raises(ValueError, match="state"):
        cell(torch.zeros(1, 3, 5, 5), (torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)))
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(3, 4, kernel_size=2)


def _trained_bn(channels=4):
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.train()
    for _ in range(3):
        bn(torch.randn(8, channels, 5, 5) * 3 + 1)
    return bn.eval()


def test_frozen_batchnorm_equals_batchnorm_in_eval_and_loads_its_state():
    bn = _trained_bn()
    frozen = FrozenBatchNorm2d(4)
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is accepted and ignored
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(frozen(x), bn(x))
    frozen.train()
    torch.testing.assert_close(frozen(x), bn(x))  # training mode changes nothing
    assert not list(frozen.parameters())
    torch.testing.assert_close(FrozenBatchNorm2d(3)(x[:, :3]), x[:, :3])  # fresh layer: identity


def test_convert_frozen_batchnorm_replaces_nested_bns():
    bn = _trained_bn()
    model = nn.Sequential(nn.Conv2d(3, 4, 1), bn, nn.Sequential(nn.BatchNorm2d(4)))
    x = torch.randn(1, 3, 4, 4)
    model.eval()
    expected = model(x)
    converted = convert_frozen_batchnorm(model)
    assert isinstance(converted[1], FrozenBatchNorm2d) and isinstance(converted[2][0], FrozenBatchNorm2d)
    converted.train()
    torch.testing.assert_close(converted(x), expected)
    assert isinstance(FrozenBatchNorm2d.convert_frozen_batchnorm(nn.BatchNorm2d(2)), FrozenBatchNorm2d)


def test_get_norm_choices():
    assert get_norm("", 8) is None and get_norm(None, 8) is None
    assert isinstance(get_norm("BN", 8), nn.BatchNorm2d)
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    assert get_norm("GN", 256).num_groups == 32
    assert get_norm("GN", 48).num_groups == 16
    assert get_norm("GN", 6).num_groups == 2
    assert isinstance(get_norm(lambda c: nn.LayerNorm(c), 8), nn.LayerNorm)
    with pytest.raises(ValueError, match="'SyncBN'.*valid names"):
        get_norm("SyncBN", 8)


def test_conv2d_applies_norm_and_activation():
    torch.manual_seed(2)
    conv = Conv2d(2, 4, 3, padding=1, bias=False, norm=get_norm("GN", 4), activation=torch.relu)
    x = torch.randn(1, 2, 5, 5)
    expected = torch.relu(conv.norm(nn.functional.conv2d(x, conv.weight, padding=1)))
    torch.testing.assert_close(conv(x), expected)
    assert set(conv.state_dict()) == {"weight", "norm.weight", "norm.bias"}
    assert ShapeSpec(channels=4, stride=16) == ShapeSpec(4, None, None, 16)
