"""RRDBNet: the generator of ESRGAN, Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks" (ECCV workshops 2018).

Taught in chapter 7 (GAN / ESRGAN; the RRDB_PSNR model trained with L1 is the starting point of
the GAN training). The building block is the Residual-in-Residual Dense Block (:class:`RRDB`):
three :class:`ResidualDenseBlock` s, each five 3x3 convs where every conv sees the concatenation
of the block input and all previous outputs (``growth`` new channels each), with the residuals
scaled by 0.2 and no batch normalisation. Upsampling is nearest-neighbour x2 + conv, twice (no
checkerboard artefacts of sub-pixel convs under adversarial training).

Configurations (module names follow BasicSR's ``rrdbnet_arch.py``; its checkpoints and both
layouts of xinntao/ESRGAN's ``RRDB_ESRGAN_x4.pth`` / ``RRDB_PSNR_x4.pth`` load with
:func:`restorelab.models.load_official`):

- ``"paper"``: 23 RRDBs, 64 features, growth 32, x4: 16,697,987 parameters.
- ``"competition"``: 12 RRDBs, same size out as in (``upscale=1``; as BasicSR does for x1 the
  input is pixel-unshuffled by 4 first, the x4 upsampler restores the size): 8,810,243
  parameters (8,784,323 for the same 12 blocks at x4).

Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h * upscale, w * upscale). For
``upscale`` 1 or 2 the input is padded (reflect) to a multiple of 4 or 2 and the output cropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.layers import scaled_kaiming_
from restorelab.models.padding import crop_to, pad_to_multiple

PRESETS = {
    "paper": {"in_channels": 3, "out_channels": 3, "upscale": 4, "num_blocks": 23},
    "competition": {"in_channels": 3, "out_channels": 3, "upscale": 1, "num_blocks": 12},
}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; returns ``x + 0.2 * conv5(...)``. (N, C, H, W) kept."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        scaled_kaiming_([self], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three dense blocks and a 0.2-scaled outer residual."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN generator: conv, ``num_blocks`` RRDBs + conv (long skip), 2 x (nearest x2, conv), 2 convs."""

    upscale = 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        num_blocks: int = 23,
        growth: int = 32,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        if upscale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports upscale 1, 2 or 4, not {upscale}")
        self.upscale = upscale
        self.unshuffle = 4 // upscale  # x1 and x2 fold pixels into channels first (BasicSR)
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, features, 3, padding=1)
        self.body = nn.Sequential(*[RRDB(features, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.unshuffle > 1:
            x, size = pad_to_multiple(x, self.unshuffle)
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return crop_to(out, size, self.upscale)
