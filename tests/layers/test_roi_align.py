"""roi_align against a slow loop reference transcribed from the ROIAlign kernel's definition."""

import math

import pytest
import torch

from usvid.layers import ROIAlign, roi_align, roi_align_pure


def _bilinear(feature, y, x):
    """One bilinear sample of a [H, W] map: 0 outside [-1, H] x [-1, W], clamped inside."""
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * feature[y_low, x_low]
        + hy * lx * feature[y_low, x_high]
        + ly * hx * feature[y_high, x_low]
        + ly * lx * feature[y_high, x_high]
    )


def _reference_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    pooled_h, pooled_w = output_size
    data = input.double().tolist()
    out = torch.zeros(len(rois), input.shape[1], pooled_h, pooled_w, dtype=torch.float64)
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        start_x, start_y = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w = x2 * spatial_scale - offset - start_x
        roi_h = y2 * spatial_scale - offset - start_y
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / pooled_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pooled_w)
        count = max(grid_h * grid_w, 1)
        for c, feature in enumerate(data[int(b)]):
            feature = torch.tensor(feature, dtype=torch.float64)
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    total = 0.0
                    for iy in range(grid_h):
                        y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_x + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += float(_bilinear(feature, y, x))
                    out[k, c, ph, pw] = total / count
    return out


def _random_rois(generator, num, batch, height, width, scale):
    """Boxes in image coordinates, some partly or fully outside the map, some degenerate."""
    extent_y, extent_x = height / scale, width / scale
    x1 = torch.rand(num, generator=generator) * extent_x * 1.4 - 0.2 * extent_x
    y1 = torch.rand(num, generator=generator) * extent_y * 1.4 - 0.2 * extent_y
    w = torch.rand(num, generator=generator) * extent_x * 0.8
    h = torch.rand(num, generator=generator) * extent_y * 0.8
    rois = torch.stack([torch.randint(0, batch, (num,), generator=generator).double(), x1, y1, x1 + w, y1 + h], 1)
    rois[0, 1:] = torch.tensor([-3 * extent_x, -3 * extent_y, -2 * extent_x, -2 * extent_y])  # fully outside
    rois[1, 1:] = torch.tensor([extent_x * 0.5, extent_y * 0.5, extent_x * 0.5, extent_y * 0.5])  # a point
    rois[2, 1:] = torch.tensor([extent_x * 0.9, -0.5, extent_x * 1.3, extent_y * 1.2])  # over two edges
    rois[3, 1:] = torch.tensor([extent_x * 0.6, extent_y * 0.7, extent_x * 0.2, extent_y * 0.3])  # x2 < x1, y2 < y1
    return rois


CASES = [
    # (output_size, spatial_scale, sampling_ratio, aligned)
    ((3, 3), 1.0, -1, False),
    ((3, 3), 1.0, -1, True),
    ((2, 4), 0.5, 2, False),
    ((2, 4), 0.5, 2, True),
    ((4, 3), 0.25, 0, True),
    ((1, 1), 1.0, 1, False),
]


@pytest.mark.parametrize("output_size,spatial_scale,sampling_ratio,aligned", CASES)
def test_matches_loop_reference(output_size, spatial_scale, sampling_ratio, aligned):
    generator = torch.Generator().manual_seed(CASES.index((output_size, spatial_scale, sampling_ratio, aligned)))
    input = torch.randn(2, 2, 7, 9, generator=generator, dtype=torch.float64)
    rois = _random_rois(generator, 6, 2, 7, 9, spatial_scale)
    expected = _reference_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    actual = roi_align_pure(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    assert actual.shape == (6, 2) + output_size
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    assert actual[0].abs().max() == 0  # fully outside the map reads nothing


def test_list_of_boxes_equals_batch_index_format():
    generator = torch.Generator().manual_seed(3)
    input = torch.randn(3, 4, 8, 8, generator=generator)
    per_image = [
        torch.rand(2, 4, generator=generator) * 8,
        torch.zeros(0, 4),
        torch.rand(3, 4, generator=generator) * 8,
    ]
    per_image = [torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1) for b in per_image]
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(per_image)])
    from_list = roi_align_pure(input, per_image, 2, 1.0, -1, True)
    from_tensor = roi_align_pure(input, rois, (2, 2), 1.0, -1, True)
    torch.testing.assert_close(from_list, from_tensor, rtol=0, atol=0)
    assert from_list.shape == (5, 4, 2, 2)


def test_empty_boxes_give_empty_output_with_gradient_path():
    input = torch.randn(1, 3, 5, 5, requires_grad=True)
    for boxes in (torch.zeros(0, 5), [torch.zeros(0, 4)]):
        out = roi_align_pure(input, boxes, (2, 2))
        assert out.shape == (0, 3, 2, 2)
        out.sum().backward()


def test_float32_and_half_precision_follow_the_float64_result():
    generator = torch.Generator().manual_seed(4)
    input = torch.randn(1, 3, 6, 6, generator=generator, dtype=torch.float64)
    rois = _random_rois(generator, 5, 1, 6, 6, 1.0)
    expected = roi_align_pure(input, rois, (2, 2), 1.0, -1, True)
    single = roi_align_pure(input.float(), rois.float(), (2, 2), 1.0, -1, True)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), expected, rtol=1e-5, atol=1e-5)
    half = roi_align_pure(input.bfloat16(), rois.float(), (2, 2), 1.0, -1, True)
    assert half.dtype == torch.bfloat16


def test_gradcheck_wrt_input():
    generator = torch.Generator().manual_seed(5)
    input = torch.randn(2, 2, 5, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    rois = _random_rois(generator, 4, 2, 5, 6, 1.0)
    assert torch.autograd.gradcheck(lambda x: roi_align_pure(x, rois, (2, 3), 1.0, -1, True), (input,))
    assert torch.autograd.gradcheck(lambda x: roi_align_pure(x, rois, (2, 2), 1.0, 2, False), (input,))


def test_module_and_dispatcher_match_pure_op():
    generator = torch.Generator().manual_seed(6)
    input = torch.randn(2, 3, 8, 8, generator=generator)
    rois = _random_rois(generator, 5, 2, 8, 8, 0.5).float()
    module = ROIAlign((3, 3), spatial_scale=0.5, sampling_ratio=0, aligned=True)
    expected = roi_align_pure(input, rois, (3, 3), 0.5, 0, True)
    torch.testing.assert_close(module(input, rois), expected)
    torch.testing.assert_close(roi_align(input, rois, (3, 3), 0.5, 0, True), expected)
    assert "aligned=True" in repr(module)


def test_bad_inputs_name_the_problem():
    input = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="Tensor\\[K, 5\\]"):
        roi_align_pure(input, torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="boxes\\[0\\]"):
        roi_align_pure(input, [torch.zeros(2, 5)], 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align_pure(input, torch.tensor([[1.0, 0, 0, 2, 2]]), 2)
    with pytest.raises(ValueError, match="Tensor\\[N, C, H, W\\]"):
        roi_align_pure(torch.zeros(4, 4), torch.zeros(0, 5), 2)


def test_parity_with_torchvision_when_available():
    tv_ops = pytest.importorskip(
        "torchvision.ops", reason="torchvision does not import on this machine; parity is checked on GPU machines"
    )
    generator = torch.Generator().manual_seed(7)
    input = torch.randn(2, 4, 12, 10, generator=generator)
    rois = _random_rois(generator, 20, 2, 12, 10, 0.5).float()
    for sampling_ratio, aligned in [(-1, True), (-1, False), (2, True), (3, False)]:
        expected = tv_ops.roi_align(input, rois, (3, 4), 0.5, sampling_ratio, aligned)
        actual = roi_align_pure(input, rois, (3, 4), 0.5, sampling_ratio, aligned)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
