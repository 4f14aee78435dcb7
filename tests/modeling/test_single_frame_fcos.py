"""SingleFrameFCOS: training losses, overfitting, inference format and FCOS targets."""

import pytest
import torch

from usvid.modeling import build_model
from usvid.modeling.dense_heads import assign_fcos_targets, grid_locations
from usvid.modeling.dense_heads.fcos_targets import assign_targets_per_frame
from usvid.structures import Boxes, Instances

LOSS_KEYS = {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"}


def test_training_returns_finite_scalar_losses_for_clips_of_different_sizes(tiny_cfg, make_clip):
    model = build_model(tiny_cfg("SingleFrameFCOS")).train()
    empty = make_clip(2, size=(64, 64), boxes=(), seed=1)  # a lesion-free clip in the batch
    losses = model([make_clip(3), empty])
    assert set(losses) == LOSS_KEYS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("in_feature", ["res4", "p3"])
def test_losses_decrease_when_overfitting_one_clip(tiny_cfg, make_clip, run_train_steps, in_feature):
    torch.manual_seed(0)
    model = build_model(tiny_cfg("SingleFrameFCOS", **{"MODEL.FCOS.IN_FEATURE": in_feature}))
    history = run_train_steps(model, [make_clip(3)], steps=30)
    first, last = history[0], history[-1]
    assert last["loss_fcos_cls"] < 0.5 * first["loss_fcos_cls"]
    assert last["loss_fcos_loc"] < first["loss_fcos_loc"]


def test_inference_rescales_to_the_original_size_and_caps_detections(tiny_cfg, make_clip):
    cfg = tiny_cfg("SingleFrameFCOS", **{"MODEL.FCOS.SCORE_THRESH_TEST": 0.0, "MODEL.FCOS.NMS_THRESH_TEST": 1.0})
    model = build_model(cfg).eval()
    clip = make_clip(2, size=(80, 96), original_scale=2.5)
    model.reset()
    with torch.no_grad():
        outputs = [model([frame])[0] for frame in clip]
        small = model.inference_clip([{"image": f["image"]} for f in clip])  # no height/width keys
    for output, reference in zip(outputs, small):
        instances = output["instances"]
        assert instances.image_size == (200, 240)
        assert len(instances) == 16  # 30 locations, all above threshold: capped at 16
        assert instances.pred_classes.tolist() == [0] * 16
        assert torch.all(instances.scores[:-1] >= instances.scores[1:])
        assert reference["instances"].image_size == (80, 96)
        assert torch.allclose(instances.pred_boxes.tensor, reference["instances"].pred_boxes.tensor * 2.5, atol=1e-3)
        assert instances.pred_boxes.tensor[:, 2].max() <= 240 and instances.pred_boxes.tensor[:, 3].max() <= 200


def test_a_box_smaller_than_the_stride_still_gets_one_positive():
    locations = grid_locations(4, 4, 16, "cpu")  # centres at 8, 24, 40, 56
    tiny_box = torch.tensor([[28.0, 30.0, 34.0, 36.0]])  # 6x6, no location centre inside
    matched, ltrb, is_centre_cell = assign_fcos_targets(locations, tiny_box, stride=16, radius=1.5)
    assert matched.tolist().count(0) == 1
    index = int(torch.nonzero(matched == 0))
    assert locations[index].tolist() == [24.0, 40.0]  # the cell that contains the centre (31, 33)
    assert is_centre_cell.tolist() == (matched == 0).tolist()
    _, _, centerness = assign_targets_per_frame(locations, [tiny_box], stride=16, radius=1.5)
    assert centerness[index] == 1.0  # plain FCOS centre-ness would be 0: (24, 40) is outside the box


def test_overlapping_boxes_assign_each_location_to_the_smaller_one():
    locations = grid_locations(6, 6, 16, "cpu")
    big, small = [0.0, 0.0, 96.0, 96.0], [32.0, 32.0, 64.0, 64.0]
    matched, ltrb, _ = assign_fcos_targets(locations, torch.tensor([big, small]), stride=16, radius=1.5)
    at_centre = int(((locations - torch.tensor([40.0, 40.0])).abs().sum(1) == 0).nonzero())
    assert matched[at_centre] == 1
    assert ltrb[at_centre].tolist() == [8.0, 8.0, 24.0, 24.0]
    far_corner = int(((locations - torch.tensor([88.0, 88.0])).abs().sum(1) == 0).nonzero())
    assert matched[far_corner] == -1  # inside the big box but beyond 1.5 strides of its centre


def test_wrong_channel_count_names_pixel_mean(tiny_cfg):
    model = build_model(tiny_cfg("SingleFrameFCOS")).eval()
    with pytest.raises(ValueError, match="PIXEL_MEAN"):
        model([{"image": torch.zeros(3, 32, 32)}])


def test_training_frames_need_instances(tiny_cfg):
    model = build_model(tiny_cfg("SingleFrameFCOS")).train()
    frame = {
        "image": torch.zeros(1, 32, 32, dtype=torch.uint8),
        "instances": Instances((32, 32), gt_boxes=Boxes(torch.zeros(0, 4))),
    }
    assert set(model([[frame]])) == LOSS_KEYS  # no gt_classes: every box is a lesion, none here
    with pytest.raises(KeyError, match="instances"):
        model([[{"image": frame["image"]}]])
