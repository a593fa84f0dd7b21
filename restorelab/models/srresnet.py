"""SRResNet: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network" (CVPR 2017), the generator of SRGAN trained with MSE only.

Taught in chapter 4 (residual blocks, sub-pixel upsampling). Unlike SRCNN, the network works on
the small low-resolution image and upsamples at the end with learned sub-pixel convolutions
(Shi et al. 2016): a conv makes ``r*r`` times more channels and ``PixelShuffle(r)`` rearranges
them into an ``r`` times larger image. Layout of the paper (x4):

    9x9 conv + PReLU -> 16 x ResidualBlock(conv-BN-PReLU-conv-BN, + skip)
    -> conv + BN, + skip from the head -> 2 x (conv, PixelShuffle(2), PReLU) -> 9x9 conv

The paper configuration (64 channels, 3 colours, x4, one PReLU slope per activation) has exactly
1,549,462 parameters. The blocks :class:`ResidualBlock` and :class:`Upsampler` are shared with
MSRResNet (``msrresnet.py``).

Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h * upscale, w * upscale).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

PRESETS = {
    "paper": {"in_channels": 3, "out_channels": 3, "upscale": 4},
    "x2": {"in_channels": 3, "out_channels": 3, "upscale": 2},
}


class ResidualBlock(nn.Module):
    """``x + conv2(act(conv1(x)))``, with batch norm after each conv when ``batch_norm``.

    SRResNet: BN + PReLU. MSRResNet / EDSR: no BN, ReLU (BN hurts super-resolution: it removes
    the range flexibility of the features and costs memory). Shapes are kept: (N, C, H, W).
    """

    def __init__(
        self,
        channels: int = 64,
        batch_norm: bool = True,
        act: Callable[[], nn.Module] = nn.PReLU,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
        self.act = act()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SubPixelConv(nn.Module):
    """One sub-pixel stage: conv to ``r*r*C`` channels, ``PixelShuffle(r)``, activation.

    (N, C, H, W) -> (N, C, r*H, r*W).
    """

    def __init__(self, channels: int, factor: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * factor * factor, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling by ``scale``: log2(scale) stages of x2 for powers of two, one x3 stage."""

    def __init__(self, channels: int, scale: int, act: Callable[[], nn.Module] = nn.PReLU) -> None:
        if scale == 3:
            factors = [3]
        elif scale >= 1 and scale & (scale - 1) == 0:
            factors = [2] * (scale.bit_length() - 1)
        else:
            raise ValueError(
                f"sub-pixel upsampling supports x1, x3 and powers of two, not x{scale}"
            )
        super().__init__(*[SubPixelConv(channels, f, act) for f in factors])


class SRResNet(nn.Module):
    """SRResNet of the SRGAN paper: 9x9 head, BN residual blocks, sub-pixel x2 stages, 9x9 tail."""

    upscale = 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        num_blocks: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.conv_first = nn.Conv2d(in_channels, features, 9, padding=4)
        self.act_first = nn.PReLU()
        self.body = nn.Sequential(*[ResidualBlock(features) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.bn_body = nn.BatchNorm2d(features)
        self.upsampler = Upsampler(features, upscale, nn.PReLU)
        self.conv_last = nn.Conv2d(features, out_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act_first(self.conv_first(x))
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        return self.conv_last(self.upsampler(feat))
