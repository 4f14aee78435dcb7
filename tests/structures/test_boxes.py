"""Boxes behaviour: geometry helpers, indexing, concatenation and pairwise IoU."""

import pytest
import torch

from usvid.structures import Boxes, pairwise_iou


def _reference_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    if inter <= 0:
        return 0.0
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)


def test_geometry_helpers():
    boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 5.0, 9.0]]))
    assert boxes.area().tolist() == [200.0, 0.0]
    assert boxes.get_centers().tolist() == [[5.0, 10.0], [5.0, 7.0]]
    assert boxes.nonempty().tolist() == [True, False]
    assert boxes.nonempty(threshold=15.0).tolist() == [False, False]
    assert boxes.inside_box((20, 11)).tolist() == [False, True]
    assert boxes.inside_box((21, 11)).tolist() == [True, True]
    boxes.scale(2.0, 0.5)
    assert boxes.tensor.tolist() == [[0.0, 0.0, 20.0, 10.0], [10.0, 2.5, 10.0, 4.5]]


def test_clip_to_image_size_height_width():
    boxes = Boxes(torch.tensor([[-5.0, -3.0, 50.0, 8.0]]))
    boxes.clip((6, 40))
    assert boxes.tensor.tolist() == [[0.0, 0.0, 40.0, 6.0]]
    with pytest.raises(ValueError, match="NaN"):
        Boxes(torch.tensor([[0.0, 0.0, float("nan"), 1.0]])).clip((5, 5))


def test_construction_converts_and_validates():
    assert Boxes([]).tensor.shape == (0, 4)
    assert Boxes(torch.tensor([[1, 2, 3, 4]])).tensor.dtype == torch.float32
    with pytest.raises(ValueError, match="Nx4"):
        Boxes(torch.zeros(3, 5))


def test_indexing_and_iteration():
    tensor = torch.arange(12, dtype=torch.float32).view(3, 4)
    boxes = Boxes(tensor)
    assert len(boxes) == 3
    assert boxes[1].tensor.tolist() == [[4.0, 5.0, 6.0, 7.0]]
    assert boxes[-1].tensor.tolist() == [[8.0, 9.0, 10.0, 11.0]]
    assert boxes[1:].tensor.tolist() == tensor[1:].tolist()
    assert boxes[torch.tensor([True, False, True])].tensor.tolist() == tensor[[0, 2]].tolist()
    assert boxes[torch.tensor([2, 0])].tensor.tolist() == tensor[[2, 0]].tolist()
    assert [b.tolist() for b in boxes] == tensor.tolist()
    clone = boxes.clone()
    clone.tensor[0, 0] = -1
    assert boxes.tensor[0, 0] == 0
    assert boxes.to("cpu").device == torch.device("cpu")


def test_cat():
    a = Boxes(torch.ones(2, 4))
    b = Boxes(torch.zeros(1, 4))
    assert Boxes.cat([a, b]).tensor.tolist() == [[1.0] * 4, [1.0] * 4, [0.0] * 4]
    assert len(Boxes.cat([])) == 0
    with pytest.raises(TypeError, match="only Boxes"):
        Boxes.cat([a, torch.zeros(1, 4)])


def test_pairwise_iou_matches_reference_on_random_boxes():
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 2, generator=generator) * 20
    wh = torch.rand(7, 2, generator=generator) * 10
    tensor = torch.cat([xy, xy + wh], dim=1)
    tensor[0] = torch.tensor([3.0, 3.0, 3.0, 8.0])  # degenerate (zero width)
    boxes1, boxes2 = Boxes(tensor[:4]), Boxes(tensor[3:])
    iou = pairwise_iou(boxes1, boxes2)
    assert iou.shape == (4, 4)
    for i, a in enumerate(boxes1.tensor.tolist()):
        for j, b in enumerate(boxes2.tensor.tolist()):
            assert iou[i, j].item() == pytest.approx(_reference_iou(a, b), abs=1e-6)
    assert pairwise_iou(Boxes([]), boxes2).shape == (0, 4)
