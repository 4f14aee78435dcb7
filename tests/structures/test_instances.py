"""Instances behaviour: field bookkeeping, indexing of every field kind, cat and device moves."""

import pytest
import torch

from usvid.structures import Boxes, Instances


def _make(n_offset=0.0):
    return Instances(
        (32, 48),
        gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 9.0, 9.0], [2.0, 2, 3, 3]]) + n_offset),
        gt_classes=torch.tensor([0, 1, 2]),
        track_ids=["a", "b", "c"],
    )


def test_fields_set_get_has_remove():
    inst = Instances((10, 20))
    assert inst.image_size == (10, 20)
    inst.scores = torch.tensor([0.5, 0.7])
    inst.set("pred_classes", torch.tensor([1, 0]))
    assert inst.has("scores") and inst.get("pred_classes").tolist() == [1, 0]
    assert list(inst.get_fields()) == ["scores", "pred_classes"]
    assert len(inst) == 2
    with pytest.raises(ValueError, match="length 3"):
        inst.pred_boxes = Boxes(torch.zeros(3, 4))
    inst.remove("scores")
    assert not inst.has("scores")
    with pytest.raises(AttributeError, match="scores"):
        _ = inst.scores
    with pytest.raises(KeyError, match="scores"):
        inst.remove("scores")


def test_indexing_applies_to_every_field_kind():
    inst = _make()
    one = inst[1]
    assert len(one) == 1 and one.track_ids == ["b"] and one.gt_classes.tolist() == [1]
    assert inst[-1].track_ids == ["c"]
    masked = inst[torch.tensor([True, False, True])]
    assert masked.track_ids == ["a", "c"]
    assert masked.gt_boxes.tensor[:, 0].tolist() == [0.0, 2.0]
    reordered = inst[torch.tensor([2, 0])]
    assert reordered.track_ids == ["c", "a"] and reordered.gt_classes.tolist() == [2, 0]
    assert inst[1:].track_ids == ["b", "c"]
    assert len(inst[torch.zeros(3, dtype=torch.bool)]) == 0
    with pytest.raises(IndexError):
        inst[3]


def test_cat_and_to():
    a, b = _make(), _make(1.0)
    merged = Instances.cat([a, b])
    assert len(merged) == 6
    assert merged.track_ids == ["a", "b", "c"] * 2
    assert merged.gt_boxes.tensor[3:].tolist() == b.gt_boxes.tensor.tolist()
    moved = merged.to("cpu")
    assert moved.image_size == (32, 48) and isinstance(moved.gt_boxes, Boxes)
    with pytest.raises(ValueError, match="image sizes differ"):
        Instances.cat([a, Instances((1, 1), **a.get_fields())])


def test_empty_instances_and_iteration_errors():
    inst = Instances((5, 5))
    with pytest.raises(NotImplementedError):
        len(inst)
    with pytest.raises(NotImplementedError):
        iter(_make())
    assert "num_instances=0" in str(inst)
