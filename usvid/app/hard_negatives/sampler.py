"""``HardNegativeFrameSampler``: training windows centred on mined false-positive frames more
often, so the model sees the decoys it fell for more often.

It is the usvid.data window sampler with other centre weights; importing this module registers
it in ``usvid.data.frame_sampler.FRAME_SAMPLERS`` under its class name, the value of
INPUT.TRAIN_FRAME_SAMPLER.NAME that selects it.
"""

from typing import Optional

import numpy as np

from usvid.data.frame_sampler import FRAME_SAMPLERS, WindowFrameSampler

from .mined_file import HardNegativeFrames, load_hard_negative_frames

__all__ = ["HardNegativeFrameSampler"]


class HardNegativeFrameSampler(WindowFrameSampler):
    """WindowFrameSampler whose centre is a mined false-positive frame ``fp_sample_rate`` times as
    often as any other frame of the video (no mined frames: same as WindowFrameSampler)."""

    def __init__(
        self,
        num_out_frames: int,
        interval: int,
        hard_negatives: HardNegativeFrames,
        fp_sample_rate: float,
        frame_step: int = 1,
    ):
        super().__init__(num_out_frames, interval, frame_step)
        if fp_sample_rate <= 0:
            raise ValueError(f"INPUT.TRAIN_FRAME_SAMPLER.FP_SAMPLE_RATE must be > 0, got {fp_sample_rate}")
        self.hard_negatives = hard_negatives
        self.fp_sample_rate = float(fp_sample_rate)

    def centre_weights(self, video: dict) -> Optional[np.ndarray]:
        mined = self.hard_negatives.get((video["dataset"], video["video_id"]))
        if not mined:
            return None
        weights = np.ones(len(video["frames"]))
        for position, frame in enumerate(video["frames"]):
            if frame["frame_idx"] in mined:
                weights[position] = self.fp_sample_rate
        return weights


def _build_hard_negative(cfg) -> HardNegativeFrameSampler:
    s = cfg.INPUT.TRAIN_FRAME_SAMPLER
    mined = load_hard_negative_frames(s.FP_JSON_DIR) if s.FP_JSON_DIR else {}
    return HardNegativeFrameSampler(s.NUM_OUT_FRAMES, s.INTERVAL, mined, s.FP_SAMPLE_RATE, s.FRAME_STEP)


FRAME_SAMPLERS[HardNegativeFrameSampler.__name__] = _build_hard_negative
