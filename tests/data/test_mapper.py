import cv2
import numpy as np
import pytest
import torch

from usvid.config import add_ultrasound_config, get_cfg
from usvid.data.mapper import ClipAugmentation, ClipMapper, fixed_area_size


def write_clip(tmp_path, make_frame, num_frames=3, size=(40, 60), boxes=((10, 5, 30, 25),)):
    frames = []
    for i in range(num_frames):
        path = str(tmp_path / f"{i}.png")
        cv2.imwrite(path, make_frame(*size, seed=i))
        frames.append(
            {
                "file_name": path,
                "frame_idx": i,
                "annotations": [{"bbox": list(b), "track_id": 0, "category_id": 0} for b in boxes],
            }
        )
    video = {"video_id": "v", "dataset": "toy", "height": size[0], "width": size[1], "frames": frames}
    return video, frames


def test_fixed_area_size_keeps_aspect_and_divisibility():
    assert fixed_area_size(256, 256, 256 * 256, 32) == (256, 256)
    h, w = fixed_area_size(600, 800, 900_000, 32)
    assert h % 32 == 0 and w % 32 == 0 and abs(h * w / 900_000 - 1) < 0.1 and abs(w / h - 4 / 3) < 0.05
    assert fixed_area_size(10, 1000, 64, 32) == (32, 64)  # never below one multiple
    assert fixed_area_size(30, 40, 1200, 1) == (30, 40)


def test_test_mapper_output_format(tmp_path, make_frame):
    video, frames = write_clip(tmp_path, make_frame)
    mapper = ClipMapper(is_train=False, fixed_area=80 * 120, size_divisibility=8)
    (out,) = mapper(video, frames[1:2])
    assert out["image"].dtype == torch.uint8 and tuple(out["image"].shape) == (1, 80, 120)
    assert (out["height"], out["width"], out["frame_idx"], out["video_id"], out["dataset"]) == (40, 60, 1, "v", "toy")
    assert out["file_name"] == frames[1]["file_name"]
    assert out["instances"].image_size == (80, 120)
    assert out["instances"].gt_boxes.tensor.tolist() == [[20.0, 10.0, 60.0, 50.0]]
    assert out["instances"].gt_classes.tolist() == [0]
    expected = cv2.resize(make_frame(40, 60, seed=1), (120, 80), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out["image"][0].numpy(), expected)


@pytest.mark.parametrize("image_format", ["RGB", "BGR"])
def test_color_formats_have_three_channels(tmp_path, make_frame, image_format):
    video, frames = write_clip(tmp_path, make_frame, num_frames=1)
    (out,) = ClipMapper(is_train=False, image_format=image_format, fixed_area=40 * 60, size_divisibility=1)(
        video, frames
    )
    assert tuple(out["image"].shape) == (3, 40, 60)
    assert torch.equal(out["image"][0], out["image"][2])  # a gray file replicated


def test_same_augmentation_for_every_frame_of_a_clip(tmp_path, make_frame):
    video, frames = write_clip(tmp_path, make_frame, num_frames=4)
    mapper = ClipMapper(
        is_train=True,
        fixed_area=40 * 60,
        size_divisibility=4,
        scale_range=(0.5, 2.0),
        flip_prob=0.5,
        contrast=(0.5, 1.5),
        brightness=(0.7, 1.3),
        gamma=(0.6, 1.6),
    )
    seen_flips = set()
    for seed in range(8):
        clip = mapper(video, frames, np.random.default_rng(seed))
        aug = mapper.draw_augmentation(np.random.default_rng(seed))  # the clip's parameters
        seen_flips.add(aug.flip)
        out_h, out_w = fixed_area_size(40, 60, 40 * 60 * aug.area_scale, 4)
        table = aug.intensity_table()
        for frame, out in zip(frames, clip):
            expected = cv2.resize(make_frame(40, 60, seed=frame["frame_idx"]), (out_w, out_h))
            expected = cv2.LUT(expected[:, ::-1] if aug.flip else expected, table)
            assert np.array_equal(out["image"][0].numpy(), expected)
            sx, sy = out_w / 60, out_h / 40
            x1, x2 = (out_w - 30 * sx, out_w - 10 * sx) if aug.flip else (10 * sx, 30 * sx)
            assert torch.allclose(out["instances"].gt_boxes.tensor, torch.tensor([[x1, 5 * sy, x2, 25 * sy]]))
            assert (out["height"], out["width"]) == (40, 60)
    assert seen_flips == {True, False}


def test_intensity_table():
    assert ClipAugmentation().intensity_table() is None
    table = ClipAugmentation(contrast=2.0, brightness=1.0, gamma=1.0).intensity_table()
    assert table[128] == 128 and table[0] == 0 and table[255] == 255 and table[100] == 72
    assert ClipAugmentation(gamma=2.0).intensity_table()[128] == round(255 * (128 / 255) ** 2)


def test_boxes_clipped_and_empty_dropped(tmp_path, make_frame):
    video, frames = write_clip(tmp_path, make_frame, num_frames=1, boxes=((50, 30, 70, 50), (60, 0, 60.001, 10)))
    (out,) = ClipMapper(is_train=False, fixed_area=40 * 60, size_divisibility=1)(video, frames)
    assert out["instances"].gt_boxes.tensor.tolist() == [[50.0, 30.0, 60.0, 40.0]]
    assert len(out["instances"]) == 1


def test_bad_frames_are_clear_errors(tmp_path, make_frame):
    video, frames = write_clip(tmp_path, make_frame, num_frames=1)
    mapper = ClipMapper(is_train=False, fixed_area=40 * 60)
    with pytest.raises(ValueError, match=r"0.png is 60x40 but its video 'v' is annotated as 61x40"):
        mapper({**video, "width": 61}, frames)
    (tmp_path / "0.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match="cannot read frame .*0.png"):
        mapper(video, frames)


def test_from_config_uses_input_keys():
    cfg = add_ultrasound_config(get_cfg())
    cfg.INPUT.FIXED_AREA_TEST = 123
    train, test = ClipMapper.from_config(cfg, is_train=True), ClipMapper.from_config(cfg, is_train=False)
    assert test.fixed_area == 123 and test.flip_prob == 0.0
    assert train.flip_prob == cfg.INPUT.RANDOM_FLIP and tuple(train.gamma) == tuple(cfg.INPUT.GAMMA)
