"""One rendered phantom video: labels tight to the lesion masks, lesions darker than their
surroundings, lesion-free normal videos, frozen segments, lost contact, unlabelled decoys."""

import numpy as np
import pytest

from usvid.data.phantom.video import plan_video, render_frames, video_rngs

SIZE = 96


def _render(index, category, frames=24, size=SIZE, seed=0):
    plan_rng, render_rng = video_rngs(seed, index)
    plan = plan_video(plan_rng, category, frames, size, size)
    return plan, list(render_frames(plan, render_rng))


@pytest.fixture(scope="module")
def malignant_videos():
    return [_render(i, "malignant") for i in range(3)]


def test_boxes_inside_frame_and_tight_to_masks(malignant_videos):
    labelled = 0
    for plan, frames in malignant_videos:
        ids = {lesion.instance_id for lesion in plan.lesions}
        for frame in frames:
            assert frame.image.shape == (SIZE, SIZE) and frame.image.dtype == np.uint8
            for lesion in frame.lesions:
                x, y, w, h = lesion.bbox
                assert 0 <= x and 0 <= y and x + w <= SIZE and y + h <= SIZE and w > 0 and h > 0
                assert lesion.mask.shape == (h, w)
                # Tight: the mask touches all four sides of its box.
                assert lesion.mask[0].any() and lesion.mask[-1].any()
                assert lesion.mask[:, 0].any() and lesion.mask[:, -1].any()
                assert lesion.visibility.visible
                assert lesion.instance_id in ids
                labelled += 1
    assert labelled > 0


def test_lesions_are_darker_than_their_surroundings(malignant_videos):
    inside, around = [], []
    for _plan, frames in malignant_videos:
        for frame in frames:
            for lesion in frame.lesions:
                x, y, w, h = lesion.bbox
                full = np.zeros((SIZE, SIZE), bool)
                full[y : y + h, x : x + w] = lesion.mask
                pad = max(3, w // 3)
                ring = np.zeros_like(full)
                ring[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad] = True
                ring &= ~full
                inside.append(frame.image[full].mean())
                around.append(frame.image[ring].mean())
    assert len(inside) > 5
    assert np.mean(inside) < np.mean(around) - 20
    assert np.mean(np.less(inside, around)) > 0.9


def test_normal_videos_have_no_lesions_but_have_decoys():
    for index in range(3):
        plan, frames = _render(index, "normal")
        assert plan.lesions == []
        assert all(frame.lesions == () for frame in frames)
        assert len(plan.decoys) >= 1  # normal videos always get a false-positive source


def test_lesions_appear_and_disappear_with_the_elevational_sweep():
    plan, frames = _render(0, "benign", frames=80)
    visible = [bool(frame.lesions) for frame in frames]
    assert any(visible) and not all(visible)
    sizes = [frame.lesions[0].mask.sum() for frame in frames if frame.lesions]
    assert max(sizes) > 2 * min(sizes)


def test_frozen_segments_repeat_frames_and_lost_contact_is_dark_and_unlabelled():
    plan, frames = _render(8, "benign")  # this seed has both events (asserted below)
    trajectory = plan.trajectory
    frozen = np.flatnonzero(trajectory.source_frame != np.arange(len(frames)))
    lost = np.flatnonzero(trajectory.contact == 0)
    assert len(frozen) and len(lost)
    for t in frozen:
        source = frames[trajectory.source_frame[t]]
        assert np.array_equal(frames[t].image, source.image)
        assert [lesion.bbox for lesion in frames[t].lesions] == [lesion.bbox for lesion in source.lesions]
    live_mean = np.mean([frames[t].image.mean() for t in range(len(frames)) if trajectory.is_live(t)])
    for t in lost:
        assert frames[t].lesions == ()
        assert frames[t].image[SIZE // 3 :].mean() < 0.3 * live_mean


def _box_contrast(image, box):
    """Mean grey inside a box minus the mean of a ring around it (negative: darker)."""
    x, y, w, h = box
    pad = max(3, max(w, h) // 3)
    outer = image[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad].astype(float)
    inner = image[y : y + h, x : x + w].astype(float)
    return inner.mean() - (outer.sum() - inner.sum()) / max(1, outer.size - inner.size)


def test_decoys_look_like_lesions_in_a_frame_but_change_across_frames():
    """Unlabelled decoys are dark at mid-life (a single-frame detector's false positives), and
    fat lobules flatten into bands over a few frames (what a temporal model can learn)."""
    tracks = {}
    for index in range(6):
        _plan, frames = _render(index, "normal", size=SIZE, frames=40)
        for frame in frames:
            assert frame.lesions == ()
            for decoy in frame.decoys:
                tracks.setdefault((index, decoy.decoy_id), []).append((frame.image, decoy))
    long_tracks = [t for t in tracks.values() if len(t) >= 4]
    assert len(long_tracks) >= 4
    contrasts = [_box_contrast(image, d.bbox) for image, d in (track[len(track) // 2] for track in long_tracks)]
    assert np.median(contrasts) < -10
    lobules = [t for t in long_tracks if t[0][1].kind == "fat_lobule"]
    assert lobules
    for track in lobules:
        aspects = [d.bbox[2] / d.bbox[3] for _image, d in track]
        assert max(aspects) > 1.6 * min(aspects)


def test_same_seed_same_video_different_seed_different_video():
    _, a = _render(1, "malignant", frames=6)
    _, b = _render(1, "malignant", frames=6)
    _, c = _render(1, "malignant", frames=6, seed=1)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, c[0].image)
