"""UltraDet's RoI head: res5 candidate features, negative temporal context aggregation and
causal relation layers."""

from .attention import MaskedMultiheadAttention
from .box_head import CandidatePooler, Res5BoxHead
from .relation import RelationLayer, relative_geometry
from .temporal_context import NegativeTemporalContextAggregation
from .temporal_head import BufferedFrame, TemporalRoIHead

__all__ = [
    "BufferedFrame",
    "CandidatePooler",
    "MaskedMultiheadAttention",
    "NegativeTemporalContextAggregation",
    "RelationLayer",
    "Res5BoxHead",
    "TemporalRoIHead",
    "relative_geometry",
]
