"""SRCNN: Dong et al., "Image Super-Resolution Using Deep Convolutional Networks" (TPAMI 2016).

Taught in chapter 1. Three convolutions: patch extraction (9x9, 64 filters), non-linear mapping
(5x5, 32 filters; the 9-5-5 variant of the paper) and reconstruction (5x5). The network does not
change the size of its input: the low-resolution image is first upsampled with bicubic
interpolation, and SRCNN sharpens that estimate. ``padding`` keeps the output the size of the
input (the paper trained without padding on 33x33 patches; the parameters are the same).

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, H, W). The paper's model works on
the Y channel (1 channel, 57,281 parameters); ``in_channels=out_channels=3`` gives the RGB variant.
``scale`` > 1 moves the bicubic pre-upsampling inside the network (chapter 8's upscaler: the
network then takes the low-resolution image, (N, C, h, w) -> (N, C, scale h, scale w)); it uses
PyTorch's bicubic (a = -0.75, no antialiasing, which only matters when shrinking), not the
MATLAB-style one of :func:`restorelab.degrade.bicubic_resize`, and adds no parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.padding import EdgePaddedConv2d

PRESETS = {
    "paper": {"in_channels": 1, "out_channels": 1},
    "rgb": {"in_channels": 3, "out_channels": 3},
}


class SRCNN(nn.Module):
    """Three-layer SRCNN (9-5-5, 64/32 filters by default)."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
        padding_mode: str = "replicate",
        scale: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
        self.upscale = scale  # 1: works on images already upsampled to the target size
        f1, f2 = features
        k1, k2, k3 = kernel_sizes
        self.extract = EdgePaddedConv2d(
            in_channels, f1, k1, padding=k1 // 2, padding_mode=padding_mode
        )
        self.map = EdgePaddedConv2d(f1, f2, k2, padding=k2 // 2, padding_mode=padding_mode)
        self.reconstruct = EdgePaddedConv2d(
            f2, out_channels, k3, padding=k3 // 2, padding_mode=padding_mode
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upscale > 1:
            x = F.interpolate(x, scale_factor=self.upscale, mode="bicubic", align_corners=False)
        x = self.act(self.extract(x))
        x = self.act(self.map(x))
        return self.reconstruct(x)
