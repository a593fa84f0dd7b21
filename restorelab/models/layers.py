"""Small layers shared by several architectures of the course.

- :class:`LayerNorm2d`: layer normalisation over the channels of each pixel of a (N, C, H, W)
  map, as NAFNet/KBNet (chapter 5) and Restormer (chapter 6) use it. Restormer's "bias-free"
  variant only divides by the standard deviation (it does not subtract the mean).
- :class:`SimpleGate`: NAFNet's activation: split the channels in two halves and multiply them.
- :func:`scaled_kaiming_`: BasicSR's initialisation of residual networks (Kaiming normal times
  0.1), which keeps each residual branch small at the start of training (chapters 4 and 7).
- :func:`icnr_`: the initialisation of a convolution followed by ``PixelShuffle(r)`` that makes
  the ``r*r`` sub-pixels start equal, so the upsampled output has no checkerboard (chapter 4).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """Normalise each pixel's C channels: (N, C, H, W) -> (N, C, H, W).

    ``bias=True``: ``(x - mean) / sqrt(var + eps) * weight + bias`` (NAFNet, KBNet, Restormer
    "WithBias"). ``bias=False``: ``x / sqrt(var + eps) * weight`` (Restormer "BiasFree"; the
    variance is still taken around the mean). Statistics are computed in float32 so that the layer
    is stable under bf16/fp16 autocast; the result has the input's dtype.
    """

    def __init__(self, channels: int, bias: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        mean = x32.mean(1, keepdim=True)
        var = (x32 - mean).pow(2).mean(1, keepdim=True)
        if self.bias is None:
            y = x32 / torch.sqrt(var + self.eps) * self.weight[:, None, None]
        else:
            y = (x32 - mean) / torch.sqrt(var + self.eps) * self.weight[:, None, None]
            y = y + self.bias[:, None, None]
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, bias={self.bias is not None}, eps={self.eps}"


class SimpleGate(nn.Module):
    """(N, 2C, H, W) -> (N, C, H, W): the first half of the channels times the second."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


def scaled_kaiming_(modules: Iterable[nn.Module], scale: float = 0.1) -> None:
    """Kaiming-normal init of every conv/linear inside ``modules``, times ``scale``; zero biases."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                with torch.no_grad():
                    m.weight.mul_(scale)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def icnr_(conv: nn.Conv2d, factor: int) -> None:
    """ICNR init (Aitken et al., 2017) of ``conv`` (C*r*r output channels) before PixelShuffle(r).

    ``PixelShuffle`` sends output channel ``c * r*r + i`` to sub-pixel ``i`` of channel ``c``;
    giving the ``r*r`` channels of each ``c`` the same kernel (and bias) makes the shuffled
    output equal to a nearest-neighbour upsampling of one ordinary convolution at the start.
    """
    groups = factor * factor
    if conv.out_channels % groups:
        raise ValueError(f"{conv.out_channels} output channels are not a multiple of {groups}")
    with torch.no_grad():
        kernel = conv.weight[::groups].clone()  # (C, in, k, k): one kernel per output channel
        conv.weight.copy_(kernel.repeat_interleave(groups, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[::groups].repeat_interleave(groups))
