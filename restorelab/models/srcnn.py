"""SRCNN: Dong et al., "Image Super-Resolution Using Deep Convolutional Networks" (TPAMI 2016).

Taught in chapter 1. Three convolutions: patch extraction (9x9, 64 filters), non-linear mapping
(5x5, 32 filters; the 9-5-5 variant of the paper) and reconstruction (5x5). The network does not
change the size of its input: the low-resolution image is first upsampled with bicubic
interpolation, and SRCNN sharpens that estimate. ``padding`` keeps the output the size of the
input (the paper trained without padding on 33x33 patches; the parameters are the same).

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, H, W). The paper's model works on
the Y channel (1 channel, 57,281 parameters); ``in_channels=out_channels=3`` gives the RGB variant.
"""

from __future__ import annotations

import torch
from torch import nn

PRESETS = {
    "paper": {"in_channels": 1, "out_channels": 1},
    "rgb": {"in_channels": 3, "out_channels": 3},
}


class SRCNN(nn.Module):
    """Three-layer SRCNN (9-5-5, 64/32 filters by default)."""

    upscale = 1  # works on images already upsampled to the target size

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        f1, f2 = features
        k1, k2, k3 = kernel_sizes
        self.extract = nn.Conv2d(in_channels, f1, k1, padding=k1 // 2, padding_mode=padding_mode)
        self.map = nn.Conv2d(f1, f2, k2, padding=k2 // 2, padding_mode=padding_mode)
        self.reconstruct = nn.Conv2d(
            f2, out_channels, k3, padding=k3 // 2, padding_mode=padding_mode
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.extract(x))
        x = self.act(self.map(x))
        return self.reconstruct(x)
