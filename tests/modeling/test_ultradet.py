"""UltraDet: losses, overfitting, clip path == streaming, causality, reset, output format and
training statistics."""

import pytest
import torch

from usvid.modeling import build_model
from usvid.utils.events import EventStorage

LOSS_KEYS = {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr", "loss_cls", "loss_box_reg"}


def _model(tiny_cfg, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(tiny_cfg("UltraDet", **overrides))


def _stream(model, frames):
    model.reset()
    with torch.no_grad():
        return [model([frame])[0]["instances"] for frame in frames]


def _assert_same(a, b, atol=1e-4):
    assert len(a) == len(b)
    assert torch.allclose(a.scores, b.scores, atol=atol)
    assert torch.allclose(a.pred_boxes.tensor, b.pred_boxes.tensor, atol=atol * 100)


def test_training_returns_the_loss_keys_for_clips_of_different_sizes(tiny_cfg, make_clip):
    model = _model(tiny_cfg).train()
    losses = model([make_clip(4), make_clip(2, size=(64, 80), boxes=(), seed=1)])
    assert set(losses) == LOSS_KEYS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.roi_heads.relations[0].attention.query.weight.grad.abs().sum() > 0
    assert model.roi_heads.ntca.context_proj[0].weight.grad.abs().sum() > 0


def test_losses_decrease_when_overfitting_one_clip(tiny_cfg, make_clip, run_train_steps):
    model = _model(tiny_cfg)
    history = run_train_steps(model, [make_clip(3)], steps=30)
    first, last = history[0], history[-1]
    assert last["loss_fcos_cls"] < 0.5 * first["loss_fcos_cls"]
    assert last["loss_cls"] < 0.7 * first["loss_cls"]
    assert sum(last.values()) < 0.6 * sum(first.values())


@pytest.mark.parametrize(
    "use_lstm, fcos_feature, roi_feature", [(False, "res4", "res4"), (True, "res4", "res4"), (True, "p3", "p3")]
)
def test_clip_inference_equals_streaming_frame_by_frame(
    tiny_cfg, make_clip, run_train_steps, use_lstm, fcos_feature, roi_feature
):
    model = _model(
        tiny_cfg,
        **{
            "MODEL.USE_LSTM": use_lstm,
            "MODEL.FCOS.IN_FEATURE": fcos_feature,
            "MODEL.ROI_BOX_HEAD.IN_FEATURE": roi_feature,
        },
    )
    run_train_steps(model, [make_clip(3)], steps=3)  # away from the initialisation's near-ties
    model.eval()
    clip = make_clip(6, seed=2)  # longer than the window (2) + 1, so old frames leave the buffer
    with torch.no_grad():
        batched = [r["instances"] for r in model.inference_clip(clip)]
    streamed = _stream(model, clip)
    for a, b in zip(batched, streamed):
        assert len(a) > 0
        _assert_same(a, b)


def test_outputs_are_causal_and_depend_on_the_past(tiny_cfg, make_clip):
    model = _model(tiny_cfg).eval()
    clip = make_clip(4, seed=3)
    changed = [dict(f) for f in clip]
    changed[2] = dict(changed[2], image=torch.flip(changed[2]["image"], dims=[2]))
    with torch.no_grad():
        before = [r["instances"] for r in model.inference_clip(clip)]
        after = [r["instances"] for r in model.inference_clip(changed)]
    _assert_same(before[0], after[0], atol=1e-6)
    _assert_same(before[1], after[1], atol=1e-6)
    # frame 3 shares its own image but sees the changed frame 2 in its window
    assert len(before[3]) != len(after[3]) or not torch.allclose(before[3].scores, after[3].scores)


def test_reset_isolates_videos(tiny_cfg, make_clip):
    model = _model(tiny_cfg).eval()
    video_a, video_b = make_clip(3, seed=4), make_clip(3, seed=5)
    fresh = _stream(model, video_b)
    _stream(model, video_a)
    after_reset = _stream(model, video_b)  # _stream calls reset() first
    for a, b in zip(fresh, after_reset):
        _assert_same(a, b, atol=1e-6)
    model.reset()
    with torch.no_grad():
        for frame in video_a:
            model([frame])
        continued = model([video_b[0]])[0]["instances"]  # no reset: video A is still buffered
    assert len(continued) != len(fresh[0]) or not torch.allclose(continued.scores, fresh[0].scores)


def test_frame_size_change_without_reset_is_an_error(tiny_cfg, make_clip):
    model = _model(tiny_cfg).eval()
    model.reset()
    with torch.no_grad():
        model([make_clip(1)[0]])
        with pytest.raises(ValueError, match="reset"):
            model([make_clip(1, size=(64, 64))[0]])


def test_detections_are_rescaled_and_capped_at_16(tiny_cfg, make_clip):
    cfg_overrides = {
        "MODEL.PROPOSAL_GENERATOR.NUM_PROPOSALS": 24,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0,
        "MODEL.ROI_HEADS.NMS_THRESH_TEST": 1.0,
    }
    model = _model(tiny_cfg, **cfg_overrides).eval()
    clip = make_clip(2, size=(80, 96), original_scale=0.5)
    native = [dict(image=f["image"]) for f in clip]
    for scaled, reference in zip(_stream(model, clip), _stream(model, native)):
        assert scaled.image_size == (40, 48) and reference.image_size == (80, 96)
        assert len(scaled) == 16
        assert scaled.pred_classes.tolist() == [0] * 16
        assert torch.all((scaled.scores >= 0) & (scaled.scores <= 1))
        assert torch.allclose(scaled.pred_boxes.tensor * 2, reference.pred_boxes.tensor, atol=1e-3)


def test_statistics_go_to_the_active_storage_only(tiny_cfg, make_clip):
    model = _model(tiny_cfg).train()
    clips = [make_clip(2)]
    with EventStorage() as storage:
        model(clips)
    recorded = set(storage.histories())
    assert {"ultradet/num_pos_per_frame", "ultradet/cls_accuracy", "ultradet/proposal_recall"} <= recorded
    assert 0.0 <= storage.history("ultradet/cls_accuracy").latest() <= 1.0
    counts = {name: len(storage.history(name).values()) for name in recorded}
    model(clips)  # outside any storage: nothing recorded anywhere, and no error
    assert {name: len(storage.history(name).values()) for name in recorded} == counts


def test_clips_shorter_than_the_window_are_warned_about_once(tiny_cfg, make_clip, caplog):
    model = _model(tiny_cfg, **{"MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES": 3}).train()
    with caplog.at_level("WARNING", logger="usvid.modeling.roi_heads.temporal_head"):
        model([make_clip(3)])
        model([make_clip(3)])
    warnings = [r for r in caplog.records if "NUM_CONTEXT_FRAMES=3" in r.getMessage()]
    assert len(warnings) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="usvid.modeling.roi_heads.temporal_head"):
        _model(tiny_cfg, **{"MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES": 3}).train()([make_clip(4)])
    assert not caplog.records


def test_jittered_gt_copies_stay_near_their_box_and_are_reproducible():
    from usvid.modeling.roi_heads import jitter_boxes
    from usvid.structures import Boxes, pairwise_iou

    gt = torch.tensor([[40.0, 50.0, 80.0, 70.0], [10.0, 10.0, 18.0, 22.0]])
    torch.manual_seed(3)
    copies = jitter_boxes(gt, 500)
    torch.manual_seed(3)
    assert torch.equal(copies, jitter_boxes(gt, 500))
    assert copies.shape == (1000, 4)
    iou = pairwise_iou(Boxes(copies), Boxes(gt))
    own = iou[torch.arange(1000), torch.arange(1000) % 2]  # copy-major: copy i jitters box i % 2
    assert own.min() > 0.3 and (own >= 0.5).float().mean() > 0.8
    assert not torch.equal(copies[:2], gt)  # actually moved


def test_jittered_gt_gives_the_head_more_positives(tiny_cfg, make_clip):
    positives = {}
    for copies in (0, 3):
        model = _model(tiny_cfg, **{"MODEL.ROI_HEADS.NUM_JITTERED_GT": copies}).train()
        with EventStorage() as storage:
            model([make_clip(3)])
        positives[copies] = storage.history("ultradet/num_pos_per_frame").latest()
    # One GT box per frame: the exact box alone, then with most of its 3 copies.
    assert positives[0] >= 1 and positives[3] >= positives[0] + 2


def test_fused_score_is_the_geometric_mean_of_head_and_proposal_scores(tiny_cfg, make_clip):
    overrides = {"MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0, "MODEL.ROI_HEADS.NMS_THRESH_TEST": 1.0}
    fused = _model(tiny_cfg, **overrides, **{"MODEL.ROI_HEADS.FUSE_PROPOSAL_SCORE": True}).eval()
    frames = make_clip(3)
    with torch.no_grad():
        clip_results = [r["instances"] for r in fused.inference_clip(frames)]
        # The expected scores from the model's parts: every candidate is kept (no threshold, no NMS).
        images = fused.normalize_frames(frames)
        features, _ = fused._features(images)
        _, candidates, proposal_scores = fused._proposals(features, tuple(images.shape[-2:]))
        logits, _ = fused.roi_heads.forward_clip(features[fused.roi_feature], candidates)
    head_scores = torch.softmax(logits, dim=-1)[..., 0]
    for t, instances in enumerate(clip_results):
        expected = (head_scores[t] * proposal_scores[t]).sqrt().sort(descending=True).values
        assert torch.allclose(instances.scores, expected, atol=1e-6)
    for streamed, clip in zip(_stream(fused, frames), clip_results):
        _assert_same(streamed, clip)


def test_channels_last_model_computes_the_same_losses_and_detections(tiny_cfg, make_clip):
    default, channels_last = _model(tiny_cfg), _model(tiny_cfg, **{"MODEL.CHANNELS_LAST": True})
    convolutions = [m.weight for m in channels_last.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    assert not default.backbone.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    channels_last.load_state_dict(default.state_dict())  # loading keeps the memory order
    assert channels_last.backbone.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    clip = make_clip(3)
    torch.manual_seed(1)
    expected = default.train()(clip)
    torch.manual_seed(1)
    actual = channels_last.train()(clip)
    for key in LOSS_KEYS:
        assert torch.allclose(actual[key], expected[key], atol=1e-4), key
    for a, b in zip(_stream(default.eval(), clip), _stream(channels_last.eval(), clip)):
        _assert_same(a, b)
