"""A convolutional LSTM cell: the recurrent memory of streaming (causal) video detectors."""

from typing import Optional, Tuple

import torch
from torch import nn


class ConvLSTMCell(nn.Module):
    """ConvLSTM (Shi et al., 2015): an LSTM whose gates are convolutions, so the hidden state
    keeps the spatial layout of the feature map it summarises across frames.

    ``forward(x, state=None) -> (h, c)`` consumes one frame's ``[N, in_channels, H, W]`` map;
    ``state`` is the previous ``(h, c)`` (each ``[N, hidden_channels, H, W]``), ``None`` for the
    first frame of a video (zeros). Padding keeps H and W unchanged.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvLSTMCell: kernel_size must be odd to keep H, W; got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        # One convolution computes the input, forget, output and candidate gates together.
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2
        )
        with torch.no_grad():
            # Forget-gate bias 1: the cell starts by remembering (Jozefowicz et al., 2015).
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels : 2 * hidden_channels].fill_(1.0)

    def forward(
        self, x: torch.Tensor, state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConvLSTMCell: x must be [N, {self.in_channels}, H, W]; got {tuple(x.shape)}")
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_channels, x.shape[2], x.shape[3])
            state = (zeros, zeros)
        hidden, cell = state
        if hidden.shape != (x.shape[0], self.hidden_channels) + x.shape[2:] or cell.shape != hidden.shape:
            raise ValueError(
                f"ConvLSTMCell: state (h, c) must each be [N, {self.hidden_channels}, H, W] matching "
                f"x {tuple(x.shape)}; got {tuple(hidden.shape)} and {tuple(cell.shape)}"
            )
        gates = self.gates(torch.cat([x, hidden], dim=1))
        input_gate, forget_gate, output_gate, candidate = gates.chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(candidate)
        hidden = torch.sigmoid(output_gate) * torch.tanh(cell)
        return hidden, cell

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, hidden_channels={self.hidden_channels}"
