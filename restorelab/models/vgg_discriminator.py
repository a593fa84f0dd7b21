"""VGG-style discriminator of SRGAN / ESRGAN, in the layout of BasicSR's ``VGGStyleDiscriminator``.

Taught in chapter 7 (GAN / ESRGAN). Five stages, each a 3x3 conv and a strided 4x4 conv (both
followed by batch norm, except the very first conv, and LeakyReLU 0.2), take a 128x128 patch
down to 4x4 x 512 features; two linear layers give one real/fake logit per image. ESRGAN uses it
as a *relativistic* discriminator: the loss compares the logits of real and fake patches.

The reference configuration (RGB, 64 base features, 128x128 patches) has 14,499,401 parameters
(the linear layer on the 8192 flattened features holds 819,300 of them).

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, 1) logits. BasicSR's network only accepts
128x128 inputs; here the last feature map is average-pooled to 4x4 (a no-op for 128x128), so
other sizes work too, though the discriminator is meant for the patch size it was trained on.
"""

from __future__ import annotations

import torch
from torch import nn

PRESETS = {
    "paper": {"in_channels": 3, "features": 64},
}


class VGGStyleDiscriminator(nn.Module):
    """Conv/BN/LeakyReLU stages halving the size five times, then 8192 -> 100 -> 1 linear layers."""

    upscale = None  # not an image-to-image model: (N, C, H, W) -> (N, 1)

    def __init__(self, in_channels: int = 3, features: int = 64) -> None:
        super().__init__()
        f = features
        widths = [f, 2 * f, 4 * f, 8 * f, 8 * f]
        # stage i: conv{i}_0 (3x3, keeps the size) then conv{i}_1 (4x4, stride 2); names as BasicSR
        self.conv0_0 = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f)
        for i in range(1, 5):
            cin, cout = widths[i - 1], widths[i]
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(cout))
            setattr(self, f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(cout))
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, 5):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = self.pool(feat).flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))
