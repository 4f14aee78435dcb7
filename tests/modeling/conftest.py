"""Tiny model configs and synthetic clips for the modeling tests (CPU, a few ms per frame)."""

import pytest
import torch

from usvid.config import add_ultrasound_config, get_cfg
from usvid.structures import Boxes, Instances

# The default model at a width a test can afford (a few ms per frame on a CPU).
TINY_MODEL = {
    "MODEL.DEVICE": "cpu",
    "MODEL.RESNETS.STEM_OUT_CHANNELS": 8,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": 8,
    "MODEL.FCOS.CONV_CHANNELS": 16,
    "MODEL.FCOS.NUM_CONVS": 1,
    "MODEL.PROPOSAL_GENERATOR.NUM_PROPOSALS": 8,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": 4,
    "MODEL.ROI_BOX_HEAD.CONTEXT_POOLER_RESOLUTION": 2,
    "MODEL.ROI_BOX_HEAD.FC_DIM": 32,
    "MODEL.ROI_BOX_HEAD.NUM_HEADS": 4,
    "MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES": 2,
}


def _tiny_cfg(meta_architecture: str, **overrides):
    cfg = add_ultrasound_config(get_cfg())
    options = {"MODEL.META_ARCHITECTURE": meta_architecture, **TINY_MODEL, **overrides}
    cfg.merge_from_list([item for kv in options.items() for item in kv])
    return cfg


@pytest.fixture
def tiny_cfg():
    """``tiny_cfg("UltraDet", **{"MODEL.USE_LSTM": True})`` -> a small CPU config."""
    return _tiny_cfg


def _make_clip(num_frames=4, size=(80, 96), boxes=((20.0, 16.0, 52.0, 44.0),), seed=0, original_scale=1.0):
    """Frames of one synthetic video: dark ellipses (the "lesions", at ``boxes`` moving one pixel
    per frame) on speckle-like noise, with matching ground truth."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    frames = []
    for t in range(num_frames):
        image = 110 + 40 * torch.rand(height, width, generator=generator)
        frame_boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4) + t
        for x1, y1, x2, y2 in frame_boxes.tolist():
            cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
            image[((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1] = 30
        instances = Instances(
            size, gt_boxes=Boxes(frame_boxes), gt_classes=torch.zeros(len(frame_boxes), dtype=torch.long)
        )
        frames.append(
            {
                "image": image.clamp(0, 255).to(torch.uint8)[None],
                "instances": instances,
                "height": round(height * original_scale),
                "width": round(width * original_scale),
            }
        )
    return frames


@pytest.fixture
def make_clip():
    return _make_clip


def train_steps(model, clips, steps, lr=3e-3):
    """Run ``steps`` AdamW steps on fixed clips; returns the list of loss dicts (floats)."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    history = []
    for _ in range(steps):
        losses = model(clips)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


@pytest.fixture
def run_train_steps():
    return train_steps
