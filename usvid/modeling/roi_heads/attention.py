"""Multi-head attention with a boolean key mask and an optional additive logit bias.

Both temporal modules of UltraDet need the same two things that ``nn.MultiheadAttention`` does
not give cleanly: (1) a query with NO visible key (the first frame of a video has no context)
must get a zero update instead of NaN, and (2) masked keys must get exactly zero weight, so that
attending over a long clip with a causal mask gives the same numbers as attending over only
the buffered keys during streaming.
"""

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


class MaskedMultiheadAttention(nn.Module):
    """Scaled dot-product attention over ``num_heads`` heads of a ``dim``-wide feature, where a
    query whose keys are all masked gets a zero update (see the module docstring for why)."""

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
        mask: Optional[torch.Tensor] = None,
        bias: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``query`` [N, Q, D] attends to ``key`` [N, S, D] (also the values) where ``mask``
        [N, Q, S] is True (None: every key is visible); ``bias`` [N, H, Q, S] is added to the
        logits. Returns [N, Q, D].

        One fused ``scaled_dot_product_attention`` call: streaming runs this for every frame on
        a few dozen keys, where the count of small ops, not arithmetic, sets the cost."""
        q = self._split_heads(self.query(query))
        k = self._split_heads(self.key(key))
        v = self._split_heads(self.value(key))
        attn_mask, has_key = bias, None
        if mask is not None:
            visible = mask[:, None]  # [N, 1, Q, S]
            has_key = visible.any(dim=-1, keepdim=True)
            # A query without any visible key attends to all (finite softmax), then is zeroed.
            visible = visible | ~has_key
            attn_mask = visible if bias is None else bias.masked_fill(~visible, float("-inf"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        if has_key is not None:
            attended = attended * has_key
        return self.out(attended.transpose(1, 2).reshape(query.shape))
