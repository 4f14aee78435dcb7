"""The one box-geometry implementation (usvid.structures.box_ops, re-exported by usvid.layers):
per-pair loop references, the rule for empty and degenerate boxes, clipping, gradients."""

import numpy as np
import pytest
import torch

from usvid.evaluation.segment_ops import matched_iou
from usvid.layers import box_area, box_iou, generalized_box_iou
from usvid.structures import Boxes, pairwise_iou
from usvid.structures.box_ops import clip_boxes, matched_box_iou


def _pair_terms(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter, union, enclosing


def _boxes(generator, n):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 20 - 5
    return torch.cat([xy, xy + torch.rand(n, 2, generator=generator, dtype=torch.float64) * 10 + 0.1], 1)


def test_box_iou_and_giou_match_reference():
    generator = torch.Generator().manual_seed(21)
    a, b = _boxes(generator, 6), _boxes(generator, 5)
    b[0] = a[0]  # identical pair
    iou, giou = box_iou(a, b), generalized_box_iou(a, b)
    assert iou.shape == giou.shape == (6, 5)
    for i, box_a in enumerate(a.tolist()):
        for j, box_b in enumerate(b.tolist()):
            inter, union, enclosing = _pair_terms(box_a, box_b)
            assert iou[i, j].item() == pytest.approx(inter / union, abs=1e-12)
            assert giou[i, j].item() == pytest.approx(inter / union - (enclosing - union) / enclosing, abs=1e-12)
    assert iou[0, 0].item() == pytest.approx(1.0) and giou[0, 0].item() == pytest.approx(1.0)


def test_hand_computed_values_and_area():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 6.0, 2.0]])
    assert box_area(b).tolist() == [4.0, 4.0]
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 7, 0.0]]))
    # Disjoint boxes: GIoU = 0 - (12 - 8) / 12 = -1/3.
    torch.testing.assert_close(generalized_box_iou(a, b), torch.tensor([[1 / 7 - 2 / 9, -1 / 3]]))
    assert box_iou(torch.zeros(0, 4), b).shape == (0, 2)


def test_gradients_flow_through_iou_and_giou():
    generator = torch.Generator().manual_seed(22)
    a = _boxes(generator, 3).requires_grad_(True)
    b = _boxes(generator, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(box_iou, (a, b))
    assert torch.autograd.gradcheck(generalized_box_iou, (a, b))


def test_pairs_without_positive_intersection_have_iou_zero_and_gradient_zero():
    boxes = torch.tensor(
        [
            [2.0, 2.0, 2.0, 2.0],  # a point
            [1.0, 0.0, 1.0, 5.0],  # a segment (zero width)
            [5.0, 5.0, 3.0, 8.0],  # x2 < x1
            [0.0, 0.0, 4.0, 4.0],  # an ordinary box that contains the point and the segment
        ],
        requires_grad=True,
    )
    iou = box_iou(boxes, boxes)
    expected = torch.zeros(4, 4)
    expected[3, 3] = 1.0
    assert iou.tolist() == expected.tolist()  # 0, not torchvision's 0 / 0 = NaN on the diagonal
    iou.sum().backward()
    assert torch.isfinite(boxes.grad).all()
    assert generalized_box_iou(boxes[:1], boxes[:1]).tolist() == [[0.0]]  # no enclosing area


def test_nan_coordinates_give_iou_zero_in_model_and_metrics_alike():
    a = np.array([[0.0, 0.0, 4.0, 4.0], [np.nan, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0]])
    b = np.array([[0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0]])
    assert matched_iou(a, b).tolist() == [0.5, 0.0, 1.0]
    assert matched_box_iou(torch.from_numpy(a), torch.from_numpy(b)).tolist() == [0.5, 0.0, 1.0]


def test_matched_broadcasts_and_agrees_with_pairwise_bit_for_bit():
    generator = torch.Generator().manual_seed(23)
    a, b = _boxes(generator, 7).float(), _boxes(generator, 5).float()
    a[1, 2] = a[1, 0]  # a zero-width box
    pairwise = box_iou(a, b)
    assert torch.equal(matched_box_iou(a[:, None], b[None]), pairwise)
    assert torch.equal(pairwise_iou(Boxes(a), Boxes(b)), pairwise)
    assert matched_box_iou(a[:0], b[:0]).shape == (0,)


def test_clip_boxes_out_of_place_and_boxes_clip_alike():
    boxes = torch.tensor([[-5.0, -3.0, 50.0, 8.0], [1.0, 2.0, 3.0, 4.0]])
    clipped = clip_boxes(boxes, 6, 40)
    assert clipped.tolist() == [[0.0, 0.0, 40.0, 6.0], [1.0, 2.0, 3.0, 4.0]]
    assert boxes[0].tolist() == [-5.0, -3.0, 50.0, 8.0]  # input untouched
    wrapped = Boxes(boxes.clone())
    wrapped.clip((6, 40))
    assert torch.equal(wrapped.tensor, clipped)
