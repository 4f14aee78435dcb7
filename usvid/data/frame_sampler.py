"""Which frames of a video form a training clip.

A clip is NUM_OUT_FRAMES sorted frames drawn from a window of INTERVAL frames around a centre
frame, FRAME_STEP frames apart (1: consecutive); the centre frame is always part of the clip. The
temporal detector learns from nearby frames that share the lesion's appearance, which a window
gives and a whole-video draw would not. A detector whose context frames lie FRAME_STEP frames
apart (MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP) trains on clips with that same spacing.

Other samplers change only where the centre falls (``centre_weights``) and register a builder
``cfg -> sampler`` in ``FRAME_SAMPLERS`` under the name INPUT.TRAIN_FRAME_SAMPLER.NAME gives
them: the application's ``HardNegativeFrameSampler`` (usvid/app/hard_negatives/) does so when
``usvid.app`` is imported.
"""

from typing import Callable, Dict, List, Optional

import numpy as np

__all__ = ["WindowFrameSampler", "build_frame_sampler", "FRAME_SAMPLERS"]


class WindowFrameSampler:
    """Uniform centre frame, then the clip's other frames from the window around it."""

    def __init__(self, num_out_frames: int, interval: int, frame_step: int = 1):
        if num_out_frames < 1 or interval < 1 or frame_step < 1:
            raise ValueError(
                f"INPUT.TRAIN_FRAME_SAMPLER: NUM_OUT_FRAMES ({num_out_frames}), INTERVAL ({interval}) and "
                f"FRAME_STEP ({frame_step}) must be >= 1"
            )
        self.num_out_frames = num_out_frames
        self.interval = interval
        self.frame_step = frame_step

    def centre_weights(self, video: dict) -> Optional[np.ndarray]:
        """Relative probability of each frame position being the window centre (None: uniform)."""
        return None

    def __call__(self, video: dict, rng: np.random.Generator) -> List[int]:
        """Sorted positions (indices into ``video["frames"]``) of one clip. A video shorter than
        NUM_OUT_FRAMES repeats frames (still sorted), so every clip has the same length."""
        num_frames = len(video["frames"])
        weights = self.centre_weights(video)
        p = None if weights is None else weights / weights.sum()
        centre = int(rng.choice(num_frames, p=p))
        others = [i for i in self._window(centre, num_frames) if i != centre]
        wanted = self.num_out_frames - 1
        if len(others) >= wanted:
            picks = rng.choice(others, size=wanted, replace=False).tolist()
        else:
            picks = others + rng.choice(others + [centre], size=wanted - len(others)).tolist()
        return sorted([centre] + [int(i) for i in picks])

    def _window(self, centre: int, num_frames: int) -> range:
        """The INTERVAL positions FRAME_STEP apart that include ``centre``, centred on it where
        the video allows and shifted to stay inside it near either end."""
        step = self.frame_step
        earliest, latest = -(centre // step), (num_frames - 1 - centre) // step  # in steps from centre
        first = min(max(-(self.interval // 2), earliest), max(latest - self.interval + 1, earliest))
        return range(centre + first * step, centre + (min(first + self.interval - 1, latest) + 1) * step, step)


def _build_window(cfg) -> WindowFrameSampler:
    s = cfg.INPUT.TRAIN_FRAME_SAMPLER
    # A mined file given to the plain sampler would be silently ignored: say so instead.
    if s.FP_JSON_DIR:
        raise ValueError(
            f"INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR is set ({s.FP_JSON_DIR}) but NAME is WindowFrameSampler, "
            "which ignores it; set NAME to HardNegativeFrameSampler"
        )
    return WindowFrameSampler(s.NUM_OUT_FRAMES, s.INTERVAL, s.FRAME_STEP)


# INPUT.TRAIN_FRAME_SAMPLER.NAME -> builder ``cfg -> sampler``.
FRAME_SAMPLERS: Dict[str, Callable] = {"WindowFrameSampler": _build_window}


def build_frame_sampler(cfg) -> WindowFrameSampler:
    """The frame sampler named by INPUT.TRAIN_FRAME_SAMPLER.NAME."""
    name = cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME
    if name not in FRAME_SAMPLERS:
        raise KeyError(
            f"INPUT.TRAIN_FRAME_SAMPLER.NAME={name!r} is not one of {sorted(FRAME_SAMPLERS)} "
            "(HardNegativeFrameSampler is registered by importing usvid.app)"
        )
    return FRAME_SAMPLERS[name](cfg)
