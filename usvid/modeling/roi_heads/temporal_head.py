"""UltraDet's RoI head: candidate features -> NTCA -> causal relation layers -> lesion /
background scores and box refinement, written once for a whole clip and once for one streamed
frame so that both compute the same function (frame t sees frames t-W .. t, W =
``MODEL.ROI_BOX_HEAD.INTERVAL_PRE_TEST``)."""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .box_head import CandidatePooler, Res5BoxHead
from .relation import RelationLayer
from .temporal_context import NegativeTemporalContextAggregation


@dataclass
class BufferedFrame:
    """What streaming keeps of a past frame: its NTCA context map and its candidates' boxes and
    per-layer relation inputs (the keys later frames attend to)."""

    context_map: Optional[torch.Tensor]  # [Cc, h, w], None without NTCA
    boxes: torch.Tensor  # [K, 4]
    relation_inputs: List[torch.Tensor] = field(default_factory=list)  # one [K, D] per layer


class TemporalRoIHead(nn.Module):
    def __init__(self, cfg, in_channels: int, stride: int, res5_blocks: int):
        super().__init__()
        h = cfg.MODEL.ROI_BOX_HEAD
        self.window = h.INTERVAL_PRE_TEST
        self.pooler = CandidatePooler(stride, h.POOLER_RESOLUTION, h.POOLER_SAMPLING_RATIO)
        self.box_head = Res5BoxHead(in_channels, res5_blocks, cfg.MODEL.RESNETS.NORM, h.FC_DIM)
        self.ntca = None
        if h.USE_NTCA:
            self.ntca = NegativeTemporalContextAggregation(
                in_channels, h.CONTEXT_CHANNELS, h.CONTEXT_POOLER_RESOLUTION, h.FC_DIM, h.NUM_HEADS, self.window
            )
        self.relations = nn.ModuleList(RelationLayer(h.FC_DIM, h.NUM_HEADS) for _ in range(h.NUM_RELATION_LAYERS))
        # Two classes, softmax: index 0 = lesion, index 1 = background (detectron2's layout).
        self.cls_score = nn.Linear(h.FC_DIM, 2)
        self.bbox_pred = nn.Linear(h.FC_DIM, 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.zeros_(layer.bias)

    def context_index(self, num_frames: int, device) -> torch.Tensor:
        """[T, W] index of frame t - 1 - w for each frame t and offset w (-1 when < 0)."""
        t = torch.arange(num_frames, device=device)[:, None]
        w = torch.arange(self.window, device=device)[None]
        index = t - 1 - w
        return torch.where(index >= 0, index, torch.full_like(index, -1))

    def _candidate_features(
        self, feature_maps: torch.Tensor, boxes: torch.Tensor, context_maps: Optional[torch.Tensor], context_index
    ) -> torch.Tensor:
        """Candidate features [B, K, D] of B frames (``feature_maps`` [B, C, h, w], ``boxes``
        [B, K, 4]) after NTCA over their context frames (``context_index`` [B, W] into
        ``context_maps``). The same code serves the clip and the streaming path."""
        num_frames, num_boxes, _ = boxes.shape
        channels = feature_maps.shape[1]
        if self.ntca is None:
            return self.box_head(self.pooler(feature_maps, boxes)).view(num_frames, num_boxes, -1)
        stacked = torch.cat((feature_maps, self.ntca.stack_context(context_maps, context_index)), dim=1)
        pooled = self.pooler(stacked, boxes)
        x = self.box_head(pooled[:, :channels]).view(num_frames, num_boxes, -1)
        return self.ntca(x, pooled[:, channels:], context_index)

    def forward_clip(self, feature_maps: torch.Tensor, boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """All T frames of a clip at once. ``feature_maps`` [T, C, h, w], ``boxes`` [T, K, 4]
        -> class logits [T, K, 2] and box deltas [T, K, 4]."""
        num_frames, num_boxes, _ = boxes.shape
        context_maps = None if self.ntca is None else self.ntca.context_maps(feature_maps)
        x = self._candidate_features(feature_maps, boxes, context_maps, self.context_index(num_frames, boxes.device))
        frame_of = torch.arange(num_frames, device=boxes.device).repeat_interleave(num_boxes)
        lag = frame_of[:, None] - frame_of[None, :]
        causal_mask = (lag >= 0) & (lag <= self.window)
        x, flat_boxes = x.reshape(num_frames * num_boxes, -1), boxes.reshape(-1, 4)
        for layer in self.relations:
            x = layer(x, flat_boxes, x, flat_boxes, causal_mask)
        x = x.view(num_frames, num_boxes, -1)
        return self.cls_score(x), self.bbox_pred(x)

    def forward_frame(
        self, feature_map: torch.Tensor, boxes: torch.Tensor, buffer: Sequence[BufferedFrame]
    ) -> Tuple[torch.Tensor, torch.Tensor, BufferedFrame]:
        """One streamed frame. ``feature_map`` [1, C, h, w], ``boxes`` [K, 4], ``buffer`` the
        previous frames (oldest first, at most W). Returns logits [K, 2], deltas [K, 4] and the
        entry to buffer for the next frames."""
        buffer = list(buffer)[-self.window:] if self.window else []
        context_map, buffered_maps, index = None, None, None
        if self.ntca is not None:
            context_map = self.ntca.context_maps(feature_map)[0]
            buffered_maps = torch.stack([f.context_map for f in buffer] + [context_map])
            index = len(buffer) - 1 - torch.arange(self.window, device=boxes.device)
            index = torch.where(index >= 0, index, torch.full_like(index, -1))[None]
        x = self._candidate_features(feature_map, boxes[None], buffered_maps, index)[0]
        entry = BufferedFrame(context_map=context_map, boxes=boxes)
        key_boxes = torch.cat([f.boxes for f in buffer] + [boxes])
        for layer_index, layer in enumerate(self.relations):
            entry.relation_inputs.append(x)
            keys = torch.cat([f.relation_inputs[layer_index] for f in buffer] + [x])
            x = layer(x, boxes, keys, key_boxes, None)  # every buffered candidate is visible
        return self.cls_score(x), self.bbox_pred(x), entry
