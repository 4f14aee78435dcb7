"""The labelling rule: a lesion cross-section is labelled only when an annotator could see it
(usvid/data/phantom/visibility.py), and lesion sizes are those of breast ultrasound video."""

import numpy as np
import pytest

from usvid.data.phantom.lesions import MAX_DIAMETER_MM, MIN_DIAMETER_MM, sample_diameter
from usvid.data.phantom.speckle import IMAGE_DEPTH_MM
from usvid.data.phantom.video import plan_video, render_frames, video_rngs
from usvid.data.phantom.visibility import (
    MIN_IN_FRAME_SHARE,
    ROSE_THRESHOLD,
    assess_visibility,
    speckle_grain,
)


def test_speckle_grain_is_measured_narrower_in_depth_and_scales_with_the_frame():
    grain = speckle_grain(256, 256)
    # The PSF's axial sigma (0.22 mm) is under half its lateral one (0.5 mm): so is the grain.
    assert 3.0 < grain.axial < 5.0 and 5.5 < grain.lateral < 8.5
    assert grain.axial < 0.75 * grain.lateral
    bigger = speckle_grain(512, 512)
    assert bigger.axial == pytest.approx(2 * grain.axial, rel=0.25)
    assert bigger.lateral == pytest.approx(2 * grain.lateral, rel=0.25)


def _speckle_image(rng, size=128):
    return np.clip(rng.normal(120.0, 20.0, (size, size)), 0, 255).astype(np.uint8)


def _disc(size, centre, radius):
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[1]) ** 2 + (xx - centre[0]) ** 2 <= radius**2


def test_rule_separates_a_dark_lesion_from_a_speckle_patch():
    rng = np.random.default_rng(0)
    grain = speckle_grain(256, 256)
    nothing = np.zeros((128, 128), bool)
    mask = _disc(128, (64, 64), 12)
    plain = _speckle_image(rng)
    unseen = assess_visibility(plain, mask, float(mask.sum()), nothing, grain)
    assert not unseen.visible and unseen.detectability < ROSE_THRESHOLD
    lesion = plain.copy()
    lesion[mask] = (lesion[mask] * 0.4).astype(np.uint8)  # about 3.6 speckle std darker
    seen = assess_visibility(lesion, mask, float(mask.sum()), nothing, grain)
    assert seen.visible and seen.contrast > 2.5
    assert seen.grains == pytest.approx(mask.sum() / grain.area)
    # The same contrast over a couple of grains is a speckle fluctuation, not a lesion.
    speck = _disc(128, (64, 64), 2)
    tiny = plain.copy()
    tiny[speck] = (tiny[speck] * 0.4).astype(np.uint8)
    assert not assess_visibility(tiny, speck, float(speck.sum()), nothing, grain).visible


def test_rule_needs_most_of_the_lesion_inside_the_frame():
    rng = np.random.default_rng(1)
    grain = speckle_grain(256, 256)
    image = _speckle_image(rng)
    mask = _disc(128, (64, 64), 20)
    image[mask] = 10
    nothing = np.zeros_like(mask)
    full = float(mask.sum())
    assert assess_visibility(image, mask, full, nothing, grain).visible
    share = MIN_IN_FRAME_SHARE * 0.9
    clipped = assess_visibility(image, mask, full / share, nothing, grain)
    assert clipped.in_frame_share == pytest.approx(share) and not clipped.visible


def test_labelled_lesions_pass_the_rule_and_unlabelled_slivers_are_rare():
    frames = drawn = hidden_frames = 0
    for index, category in enumerate(["malignant", "benign", "malignant", "benign"]):
        plan_rng, render_rng = video_rngs(3, index)
        plan = plan_video(plan_rng, category, 40, 256, 256)
        for frame in render_frames(plan, render_rng):
            frames += 1
            assert all(lesion.visibility.visible for lesion in frame.lesions)
            assert all(not lesion.visibility.visible for lesion in frame.hidden_lesions)
            drawn += bool(frame.lesions or frame.hidden_lesions)
            hidden_frames += bool(frame.hidden_lesions)
    assert drawn > 40
    assert hidden_frames <= 0.05 * frames


def test_lesion_sizes_are_a_sizeable_part_of_the_field_of_view():
    rng = np.random.default_rng(0)
    millimetres = np.array([sample_diameter(rng, 256, 256) for _ in range(4000)]) * IMAGE_DEPTH_MM / 256
    assert MIN_DIAMETER_MM <= millimetres.min() and millimetres.max() <= MAX_DIAMETER_MM
    assert 11.0 < np.median(millimetres) < 13.0
    assert np.mean(millimetres < 7.0) < 0.1
