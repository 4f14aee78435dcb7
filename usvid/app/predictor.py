"""VideoPredictor: a trained detector on frames as they come, in the style of detectron2's
DefaultPredictor, for a live scanner feed or any frame source.

It loads the weights once (as an evaluation loads them: strict, the EMA weights with
MODEL_EMA.ENABLED) and takes one frame per call, causally: the model sees only earlier frames
of the current video, exactly as in the streaming evaluation. Call ``reset()`` before the first
frame of every video. A frame goes through the same conversion (INPUT.FORMAT) and resize
(INPUT.FIXED_AREA_TEST) as the test loader applies, and the boxes come back in the frame's own
pixels.
"""

from typing import Optional

import numpy as np
import torch

from usvid.config import ConfigError
from usvid.data.mapper import inference_input, to_image_format
from usvid.engine import DefaultTrainer
from usvid.modeling import build_model

__all__ = ["VideoPredictor"]


class VideoPredictor:
    """``predictor = VideoPredictor(cfg)``; per video: ``predictor.reset()``, then
    ``predictor(frame)`` for each frame in time order, which returns ``{"instances":
    Instances(pred_boxes, scores, pred_classes)}`` on the CPU, boxes XYXY in the frame's pixels.

    ``frame``: a uint8 (or uint16) array as OpenCV decodes an image: HxW gray or HxWx3 BGR.
    ``weights`` (default cfg.MODEL.WEIGHTS): a checkpoint whose every weight fits the model
    built from ``cfg``, else a CheckpointLoadError."""

    def __init__(self, cfg, weights: Optional[str] = None):
        self.cfg = cfg.clone()
        self.cfg.defrost()
        if weights:
            self.cfg.MODEL.WEIGHTS = weights
        if not self.cfg.MODEL.WEIGHTS:
            raise ConfigError("VideoPredictor needs trained weights: pass weights= or set MODEL.WEIGHTS")
        self.cfg.freeze()
        self.model = build_model(self.cfg)
        DefaultTrainer.load_trained_weights(self.cfg, self.model)
        self.model.eval()
        self.input_format = self.cfg.INPUT.FORMAT

    def reset(self) -> None:
        """Start a new video: forget the frames buffered from the previous one."""
        self.model.reset()

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> dict:
        image = to_image_format(np.asarray(frame), self.input_format)
        inputs = inference_input(image, self.cfg.INPUT.FIXED_AREA_TEST, self.cfg.INPUT.SIZE_DIVISIBILITY)
        (output,) = self.model([inputs])
        return {"instances": output["instances"].to("cpu")}
