"""UltraDet's temporal RoI heads, built by name (``MODEL.ROI_HEADS.NAME``): res5 candidate
features, negative temporal context aggregation and causal relation layers."""

from .attention import MaskedMultiheadAttention
from .box_head import CandidatePooler, Res5BoxHead
from .build import ROI_HEADS_REGISTRY, build_roi_heads
from .relation import RelationLayer, relative_geometry
from .roi_targets import jitter_boxes, label_candidates, proposal_recall, replace_tail_with_gt
from .temporal_context import NegativeTemporalContextAggregation
from .temporal_head import BufferedFrame, TemporalRoIHead, context_index

__all__ = [
    "BufferedFrame",
    "CandidatePooler",
    "MaskedMultiheadAttention",
    "NegativeTemporalContextAggregation",
    "ROI_HEADS_REGISTRY",
    "RelationLayer",
    "Res5BoxHead",
    "TemporalRoIHead",
    "build_roi_heads",
    "context_index",
    "jitter_boxes",
    "label_candidates",
    "proposal_recall",
    "relative_geometry",
    "replace_tail_with_gt",
]
