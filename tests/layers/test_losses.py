"""Focal, GIoU and smooth-L1 losses on hand-computed cases."""

import math

import pytest
import torch

from usvid.layers import giou_loss, sigmoid_focal_loss, smooth_l1_loss


def test_sigmoid_focal_loss_hand_values():
    logits = torch.tensor([0.0, 2.0, -1.0])
    targets = torch.tensor([1.0, 0.0, 0.0])
    p = [0.5, 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))]
    expected = [
        0.25 * (1 - p[0]) ** 2 * -math.log(p[0]),
        0.75 * p[1] ** 2 * -math.log(1 - p[1]),
        0.75 * p[2] ** 2 * -math.log(1 - p[2]),
    ]
    loss = sigmoid_focal_loss(logits, targets)
    torch.testing.assert_close(loss, torch.tensor(expected))
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, reduction="sum"), torch.tensor(sum(expected)))
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, reduction="mean"), torch.tensor(sum(expected) / 3))
    # gamma 0 and no alpha is plain binary cross-entropy.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0), bce)


def test_giou_loss_hand_values():
    boxes1 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    boxes2 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 6.0, 2.0]])
    loss = giou_loss(boxes1, boxes2)
    torch.testing.assert_close(loss, torch.tensor([0.0, 1 - (1 / 7 - 2 / 9), 1 + 1 / 3]), atol=1e-6, rtol=0)
    torch.testing.assert_close(giou_loss(boxes1, boxes2, reduction="sum"), loss.sum())
    # Non-overlapping boxes still get a gradient pulling them together.
    moving = boxes2[2:].clone().requires_grad_(True)
    giou_loss(boxes1[2:], moving, reduction="sum").backward()
    assert moving.grad[0, 0] > 0  # moving x1 right (away) would increase the loss
    with pytest.raises(ValueError, match="x2 < x1"):
        giou_loss(torch.tensor([[2.0, 0, 1, 1]]), torch.tensor([[0.0, 0, 1, 1]]))
    with pytest.raises(ValueError, match="matching"):
        giou_loss(torch.zeros(2, 4), torch.zeros(3, 4))


def test_smooth_l1_loss_branches():
    prediction = torch.tensor([0.0, 0.5, 3.0])
    target = torch.zeros(3)
    torch.testing.assert_close(smooth_l1_loss(prediction, target, beta=1.0), torch.tensor([0.0, 0.125, 2.5]))
    torch.testing.assert_close(smooth_l1_loss(prediction, target, beta=0.0), torch.tensor([0.0, 0.5, 3.0]))
    torch.testing.assert_close(smooth_l1_loss(prediction, target, beta=1.0, reduction="mean"), torch.tensor(2.625 / 3))


def test_reductions_on_empty_inputs_and_bad_names():
    empty = torch.zeros(0, requires_grad=True)
    mean = sigmoid_focal_loss(empty, torch.zeros(0), reduction="mean")
    assert mean.item() == 0.0 and mean.requires_grad
    assert giou_loss(torch.zeros(0, 4), torch.zeros(0, 4), reduction="mean").item() == 0.0
    with pytest.raises(ValueError, match="reduction must be one of"):
        smooth_l1_loss(torch.zeros(1), torch.zeros(1), beta=1.0, reduction="avg")
