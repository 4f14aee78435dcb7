"""The temporal RoI head as its own unit: one context-index rule for clips and streaming, its own
stream buffer, and selection by name (MODEL.ROI_HEADS.NAME, MODEL.DENSE_HEAD.NAME) so a
different temporal module or dense head plugs in through the config."""

import pytest
import torch

from usvid.config import ConfigKeyError, add_ultrasound_config, get_cfg
from usvid.modeling import DENSE_HEAD_REGISTRY, ROI_HEADS_REGISTRY, FCOSHead, TemporalRoIHead, build_model
from usvid.modeling.roi_heads import context_index
from usvid.utils.events import EventStorage


def test_context_index_points_at_the_previous_frames_and_marks_the_missing_ones():
    clip = context_index(torch.arange(4), 2)
    assert clip.tolist() == [[-1, -1], [0, -1], [1, 0], [2, 1]]
    # A streamed frame after 3 buffered ones is row 3 of the clip rule.
    assert context_index(torch.tensor([3]), 2).tolist() == [clip[3].tolist()]
    assert context_index(torch.arange(3), 0).shape == (3, 0)


def test_the_head_buffers_streamed_frames_like_the_clip_path_sees_them(tiny_cfg):
    torch.manual_seed(0)
    cfg = tiny_cfg("UltraDet")
    head = TemporalRoIHead.from_config(cfg, in_channels=32, stride=16, res5_blocks=1).eval()
    maps = torch.randn(4, 32, 6, 8)
    boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [50.0, 20.0, 90.0, 70.0]]).expand(4, 2, 4).clone()
    with torch.no_grad():
        clip_logits, clip_deltas = head.forward_clip(maps, boxes)
        head.reset()
        streamed = [head.forward_frame(maps[t : t + 1], boxes[t]) for t in range(4)]
        head.reset()  # a new video: the first frame again sees no context
        first_again = head.forward_frame(maps[:1], boxes[0])
    for t, (logits, deltas) in enumerate(streamed):
        assert torch.allclose(logits, clip_logits[t], atol=1e-5) and torch.allclose(deltas, clip_deltas[t], atol=1e-5)
    assert torch.allclose(first_again[0], clip_logits[0], atol=1e-5)
    assert not torch.allclose(streamed[3][0], first_again[0], atol=1e-5)


def test_context_frames_a_step_apart_look_further_back():
    assert context_index(torch.arange(5), 2, step=2).tolist() == [[-1, -1], [-1, -1], [0, -1], [1, -1], [2, 0]]


def test_a_stepped_context_streams_as_both_clip_paths_see_it(tiny_cfg):
    """Context frames 2 apart: streaming 7 consecutive frames, the clip path over those 7
    frames, and a training clip of every other frame (0, 2, 4, 6: spaced as the context) give each
    frame the same scores; the buffer keeps the 4 frames that the next frames still need."""
    torch.manual_seed(0)
    cfg = tiny_cfg("UltraDet", **{"MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP": 2})
    head = TemporalRoIHead.from_config(cfg, in_channels=32, stride=16, res5_blocks=1).eval()
    maps = torch.randn(7, 32, 6, 8)
    boxes = torch.rand(7, 3, 2) * 40
    boxes = torch.cat([boxes, boxes + 10 + torch.rand(7, 3, 2) * 40], dim=2)
    with torch.no_grad():
        consecutive, _ = head.forward_clip(maps, boxes)
        sparse, _ = head.forward_clip(maps[::2], boxes[::2], frame_spacing=2)
        head.reset()
        streamed = [head.forward_frame(maps[t : t + 1], boxes[t])[0] for t in range(7)]
        one_step = TemporalRoIHead.from_config(tiny_cfg("UltraDet"), in_channels=32, stride=16, res5_blocks=1)
        one_step.load_state_dict(head.state_dict())
        consecutive_context, _ = one_step.eval().forward_clip(maps, boxes)
    assert len(head._buffer) == 4
    for t in range(7):
        assert torch.allclose(streamed[t], consecutive[t], atol=1e-5)
    for position, t in enumerate(range(0, 7, 2)):
        assert torch.allclose(sparse[position], consecutive[t], atol=1e-5)
    # The same weights with context frames 1 apart see other frames: other scores from frame 1 on.
    assert torch.allclose(consecutive_context[0], consecutive[0], atol=1e-5)
    assert not torch.allclose(consecutive_context[6], consecutive[6], atol=1e-3)
    with pytest.raises(ValueError, match="clip frames 3 apart cannot hold context frames.*CONTEXT_FRAME_STEP=2"):
        head.forward_clip(maps[::3], boxes[::3], frame_spacing=3)


def test_ultradet_trains_only_on_clips_spaced_as_its_context(tiny_cfg):
    with pytest.raises(ValueError, match=r"FRAME_STEP \(1\) must equal MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP \(3\)"):
        build_model(tiny_cfg("UltraDet", **{"MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP": 3}))
    model = build_model(
        tiny_cfg(
            "UltraDet",
            **{"MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP": 3, "INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP": 3},
        )
    )
    assert model.roi_heads.context_frame_step == 3


@ROI_HEADS_REGISTRY.register()
class _LastFrameOnlyHead(TemporalRoIHead):
    """A researcher's variant: the same head with a context of one frame, whatever the config."""

    @classmethod
    def from_config(cls, cfg, in_channels, stride, res5_blocks):
        cfg = cfg.clone()
        cfg.MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES = 1
        return super().from_config(cfg, in_channels, stride, res5_blocks)


def test_the_roi_head_is_chosen_by_config(tiny_cfg, make_clip):
    model = build_model(tiny_cfg("UltraDet", **{"MODEL.ROI_HEADS.NAME": "_LastFrameOnlyHead"})).train()
    assert type(model.roi_heads) is _LastFrameOnlyHead and model.roi_heads.num_context_frames == 1
    with EventStorage():
        losses = model([make_clip(3)])
    assert {"loss_cls", "loss_box_reg", "loss_fcos_cls"} <= set(losses)
    with pytest.raises(
        KeyError, match="No object named 'TemporalRoiHead' in the 'ROI_HEADS' registry.*TemporalRoIHead"
    ):
        build_model(tiny_cfg("UltraDet", **{"MODEL.ROI_HEADS.NAME": "TemporalRoiHead"}))


def test_the_dense_head_is_chosen_by_config(tiny_cfg):
    assert DENSE_HEAD_REGISTRY.get("FCOSHead") is FCOSHead
    assert type(build_model(tiny_cfg("SingleFrameFCOS")).head) is FCOSHead
    with pytest.raises(KeyError, match="'DENSE_HEAD' registry"):
        build_model(tiny_cfg("SingleFrameFCOS", **{"MODEL.DENSE_HEAD.NAME": "RetinaHead"}))


def test_the_renamed_context_key_names_its_new_name(tmp_path):
    config = tmp_path / "old.yaml"
    config.write_text("MODEL:\n  ROI_BOX_HEAD:\n    INTERVAL_PRE_TEST: 4\n")
    cfg = add_ultrasound_config(get_cfg())
    with pytest.raises(
        ConfigKeyError, match=rf"INTERVAL_PRE_TEST \(in {config}\) was renamed to MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES"
    ):
        cfg.merge_from_file(str(config))
    with pytest.raises(ConfigKeyError, match="was renamed to MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES"):
        cfg.merge_from_list(["MODEL.ROI_BOX_HEAD.INTERVAL_PRE_TEST", "4"])


def test_focal_classification_loss_weights_hard_candidates_and_is_cross_entropy_at_gamma_0():
    from torch.nn import functional as F

    from usvid.modeling.roi_heads.temporal_head import classification_loss

    # A lesion the head is sure of, 20 backgrounds it is fairly sure of, and one background it
    # takes for a lesion (a decoy at its most lesion-like), last.
    logits = torch.tensor([[3.0, -3.0]] + [[-1.5, 1.5]] * 20 + [[2.0, -2.0]])
    labels = torch.tensor([0] + [1] * 21)
    assert torch.allclose(classification_loss(logits, labels, 0.0), F.cross_entropy(logits, labels))
    p_true = F.softmax(logits, dim=1)[torch.arange(len(labels)), labels]
    per_candidate = -((1 - p_true) ** 2) * p_true.log()
    assert torch.allclose(classification_loss(logits, labels, 2.0), per_candidate.sum() / 1)  # one lesion
    # The hard negative carries 80 % of the cross-entropy but nearly all of the focal loss.
    cross_entropy = -p_true.log()
    assert cross_entropy[-1] / cross_entropy.sum() < 0.85
    assert per_candidate[-1] / per_candidate.sum() > 0.99
    # No lesion among the candidates: divided by 1, not by 0.
    assert torch.isfinite(classification_loss(logits[1:], labels[1:], 2.0))
