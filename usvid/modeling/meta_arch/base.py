"""What both video detectors share: input validation, normalisation, device handling and the
rescaling of predictions to the original frame size (detectron2's ``detector_postprocess``)."""

from typing import Dict, List, Sequence

import torch
from torch import nn

from usvid.structures import Boxes, Instances


class VideoDetector(nn.Module):
    """Base of the streaming video detectors.

    Training: ``forward(clips)`` with a list of clips (each a list of frame dicts) returns a
    loss dict. Inference: ``reset()`` at the start of a video, then ``forward([frame_dict])`` per
    frame returns ``[{"instances": Instances}]`` in original-frame pixels.
    """

    def __init__(self, pixel_mean: Sequence[float], pixel_std: Sequence[float], max_detections: int):
        super().__init__()
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(
                f"MODEL.PIXEL_MEAN has {len(pixel_mean)} values but MODEL.PIXEL_STD has "
                f"{len(pixel_std)}; give one value per input channel in both"
            )
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)
        self.max_detections = max_detections

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def reset(self) -> None:
        """Forget every buffered frame: call at the start of each video."""

    # ---- input handling -------------------------------------------------------------------
    def normalize_frames(self, frames: List[Dict]) -> torch.Tensor:
        """Stack the frames' "image" (CHW, 0-255) into a normalised [T, C, H, W] float tensor."""
        images = []
        for i, frame in enumerate(frames):
            if "image" not in frame:
                raise KeyError(f"frame dict {i} has no 'image' key (keys: {sorted(frame)})")
            image = frame["image"]
            if not isinstance(image, torch.Tensor) or image.dim() != 3:
                raise ValueError(
                    f"frame {i}: 'image' must be a CHW torch.Tensor, got "
                    f"{type(image).__name__} of shape {tuple(getattr(image, 'shape', ()))}"
                )
            if image.shape[0] != self.pixel_mean.shape[0]:
                raise ValueError(
                    f"frame {i}: image has {image.shape[0]} channels but MODEL.PIXEL_MEAN has "
                    f"{self.pixel_mean.shape[0]} values; they must match (1 for grayscale 'L', 3 for RGB/BGR)"
                )
            if i and image.shape[1:] != images[0].shape[1:]:
                raise ValueError(
                    f"frames of one clip must share a size; frame 0 is {tuple(images[0].shape[1:])}, "
                    f"frame {i} is {tuple(image.shape[1:])}"
                )
            images.append(image)
        stacked = torch.stack(images).to(self.device, torch.float32)
        return (stacked - self.pixel_mean) / self.pixel_std

    def gt_boxes_of(self, frames: List[Dict]) -> List[torch.Tensor]:
        """Lesion boxes [G, 4] per frame on the model's device (frames without "instances" or
        with only non-lesion classes give empty tensors)."""
        boxes = []
        for i, frame in enumerate(frames):
            if "instances" not in frame:
                raise KeyError(f"training frame {i} has no 'instances' (Instances with gt_boxes, gt_classes)")
            instances = frame["instances"]
            gt = instances.gt_boxes.tensor.to(self.device, torch.float32)
            if instances.has("gt_classes"):
                gt = gt[instances.gt_classes.to(self.device) == 0]
            boxes.append(gt)
        return boxes

    @staticmethod
    def check_training_input(batched_clips) -> List[List[Dict]]:
        if not isinstance(batched_clips, (list, tuple)) or not batched_clips:
            raise ValueError("training input must be a non-empty list of clips (lists of frame dicts)")
        clips = []
        for i, clip in enumerate(batched_clips):
            if isinstance(clip, dict):
                clip = [clip]  # a single-frame "clip" given as a bare frame dict
            if not clip:
                raise ValueError(f"training clip {i} has no frames")
            clips.append(list(clip))
        return clips

    # ---- output handling ------------------------------------------------------------------
    def to_original_size(self, frame: Dict, image_size, boxes: torch.Tensor, scores: torch.Tensor) -> Dict:
        """Wrap one frame's detections as ``{"instances": Instances}`` rescaled from the model's
        input size to the frame's original "height" / "width" (falling back to the input size)."""
        in_h, in_w = image_size
        out_h, out_w = int(frame.get("height", in_h)), int(frame.get("width", in_w))
        boxes = boxes.clone()
        boxes[:, 0::2] *= out_w / in_w
        boxes[:, 1::2] *= out_h / in_h
        result_boxes = Boxes(boxes)
        result_boxes.clip((out_h, out_w))
        instances = Instances(
            (out_h, out_w),
            pred_boxes=result_boxes,
            scores=scores,
            pred_classes=torch.zeros(len(scores), dtype=torch.long, device=scores.device),
        )
        return {"instances": instances}
