"""nms / batched_nms against a plain greedy loop, including ties, empty and degenerate boxes."""

import importlib

import pytest
import torch

from usvid.layers import batched_nms, nms, nms_pure


def _iou(a, b):
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference_nms(boxes, scores, threshold, labels=None):
    """Greedy loop: visit by decreasing score (ties: input order), keep unless IoU > threshold
    with a kept box of the same label."""
    boxes, scores = boxes.tolist(), scores.tolist()
    labels = [0] * len(boxes) if labels is None else labels.tolist()
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(labels[i] != labels[j] or _iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return kept


def _random_boxes(generator, n, extent=50.0):
    xy = torch.rand(n, 2, generator=generator) * extent - 10
    wh = torch.rand(n, 2, generator=generator) * extent / 2
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9])
def test_nms_matches_greedy_reference(threshold):
    generator = torch.Generator().manual_seed(int(threshold * 10))
    boxes = _random_boxes(generator, 120)
    scores = torch.rand(120, generator=generator)
    expected = _reference_nms(boxes, scores, threshold)
    assert nms_pure(boxes, scores, threshold).tolist() == expected
    assert nms(boxes, scores, threshold).tolist() == expected


def test_equal_scores_keep_input_order_and_suppress_later_boxes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9], [21, 20, 30, 30]])
    scores = torch.full((4,), 0.5)
    assert nms_pure(boxes, scores, 0.5).tolist() == [0, 1]
    scores = torch.tensor([0.5, 0.5, 0.9, 0.5])
    assert nms_pure(boxes, scores, 0.5).tolist() == [2, 1]


def test_threshold_is_strict_and_degenerate_boxes_never_suppress():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5], [3, 3, 3, 3], [3, 3, 3, 3]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # IoU(box0, box1) is exactly 0.5: "greater than" does not suppress at 0.5.
    assert nms_pure(boxes, scores, 0.5).tolist() == [0, 1, 2, 3]
    assert nms_pure(boxes, scores, 0.49).tolist() == [0, 2, 3]


def test_empty_inputs_and_bad_shapes():
    empty = nms_pure(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.int64 and empty.numel() == 0
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0
    with pytest.raises(ValueError, match="Tensor\\[N, 4\\]"):
        nms_pure(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores"):
        nms_pure(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="idxs"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2), 0.5)


def test_batched_nms_matches_per_category_reference_even_with_negative_coordinates():
    generator = torch.Generator().manual_seed(11)
    boxes = _random_boxes(generator, 90, extent=40.0) - 100.0  # all coordinates negative
    scores = torch.rand(90, generator=generator)
    labels = torch.randint(0, 4, (90,), generator=generator)
    kept = batched_nms(boxes, scores, labels, 0.4)
    assert sorted(kept.tolist()) == sorted(_reference_nms(boxes, scores, 0.4, labels))
    assert torch.all(scores[kept][:-1] >= scores[kept][1:])  # decreasing score


def test_blocked_iou_rows_cover_large_inputs(monkeypatch):
    # importlib: the package attribute usvid.layers.nms is the function, not the module.
    nms_module = importlib.import_module("usvid.layers.nms")
    generator = torch.Generator().manual_seed(12)
    boxes = _random_boxes(generator, 70)
    scores = torch.rand(70, generator=generator)
    monkeypatch.setattr(nms_module, "_IOU_ROW_BLOCK", 16)  # 70 rows in 5 uneven blocks
    assert nms_pure(boxes, scores, 0.3).tolist() == _reference_nms(boxes, scores, 0.3)


def test_parity_with_torchvision_when_available():
    tv_ops = pytest.importorskip(
        "torchvision.ops", reason="torchvision does not import on this machine; parity is checked on GPU machines"
    )
    generator = torch.Generator().manual_seed(13)
    boxes = _random_boxes(generator, 300)
    scores = torch.rand(300, generator=generator).round(decimals=1)  # many ties
    labels = torch.randint(0, 3, (300,), generator=generator)
    for threshold in (0.3, 0.5, 0.7):
        assert nms_pure(boxes, scores, threshold).tolist() == tv_ops.nms(boxes, scores, threshold).tolist()
        assert (
            batched_nms(boxes, scores, labels, threshold).tolist()
            == tv_ops.batched_nms(boxes, scores, labels, threshold).tolist()
        )
