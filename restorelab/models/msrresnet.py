"""MSRResNet: the "modified SRResNet" of BasicSR (Wang et al., ESRGAN workshop paper 2018).

Taught in chapter 4 next to SRResNet. Three changes to the SRGAN paper's network:

- no batch normalisation in the residual blocks (ReLU between the two convs, as in EDSR);
- LeakyReLU(0.1) instead of PReLU, and 3x3 instead of 9x9 first/last convs;
- a global residual: the output is added to the bilinear upsampling of the input, so the
  network only learns the missing high frequencies.

The x4 reference (64 features, 16 blocks, RGB) has exactly 1,517,571 parameters, the same as
BasicSR's ``MSRResNet`` whose checkpoints :func:`restorelab.models.load_official` reads. The
``"small"`` preset is chapter 4's QUICK network (32 features, 4 blocks, x4: 158,979 parameters).
The residual block and the sub-pixel upsampler are those of ``srresnet.py``.

Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h * upscale, w * upscale).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.layers import scaled_kaiming_
from restorelab.models.srresnet import ResidualBlock, Upsampler

PRESETS = {
    "paper": {"in_channels": 3, "out_channels": 3, "upscale": 4},
    "x2": {"in_channels": 3, "out_channels": 3, "upscale": 2},
    "small": {"in_channels": 3, "out_channels": 3, "upscale": 4, "features": 32, "num_blocks": 4},
}


class MSRResNet(nn.Module):
    """SRResNet without BN, with LeakyReLU(0.1) and a bilinear global residual (BasicSR layout)."""

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
        lrelu = partial(nn.LeakyReLU, 0.1, True)
        self.conv_first = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(
            *[
                ResidualBlock(features, batch_norm=False, act=partial(nn.ReLU, True))
                for _ in range(num_blocks)
            ]
        )
        self.upsampler = Upsampler(features, upscale, lrelu)
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)
        self.lrelu = lrelu()
        scaled_kaiming_([self.conv_first, self.body, self.upsampler, self.conv_hr, self.conv_last])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.lrelu(self.conv_first(x)))
        out = self.conv_last(self.lrelu(self.conv_hr(self.upsampler(feat))))
        if self.upscale == 1:
            return out + x
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base
