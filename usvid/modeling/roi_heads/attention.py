"""Multi-head attention with a boolean key mask and an optional additive logit bias.

Both temporal modules of UltraDet need the same two things that ``nn.MultiheadAttention`` does
not give cleanly: (1) a query with NO visible key (the first frame of a video has no context)
must get a zero update instead of NaN, and (2) masked keys must get exactly zero weight, so that
attending over a long clip with a causal mask gives the same numbers as attending over only
the buffered keys during streaming.
"""

import math
from typing import Optional

import torch
from torch import nn


class MaskedMultiheadAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f"MODEL.ROI_BOX_HEAD.FC_DIM={dim} must be divisible by MODEL.ROI_BOX_HEAD.NUM_HEADS={num_heads}"
            )
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)  # [N, H, L, d]

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``query`` [N, Q, D] attends to ``key`` [N, S, D] (also the values) where ``mask``
        [N, Q, S] is True; ``bias`` [N, H, Q, S] is added to the logits. Returns [N, Q, D]."""
        q = self._split_heads(self.query(query))
        k = self._split_heads(self.key(key))
        v = self._split_heads(self.value(key))
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if bias is not None:
            logits = logits + bias
        visible = mask[:, None]  # [N, 1, Q, S]
        has_key = visible.any(dim=-1, keepdim=True)
        logits = logits.masked_fill(~visible, float("-inf")).masked_fill(~has_key, 0.0)
        weights = torch.softmax(logits, dim=-1) * has_key
        attended = (weights @ v).transpose(1, 2).reshape(query.shape)
        return self.out(attended)
