"""AR-CNN: Dong et al., "Compression Artifacts Reduction by a Deep Convolutional Network" (ICCV 2015).

Taught in chapter 2 (JPEG artefact removal). SRCNN with one more layer: feature extraction (9x9,
64 filters), feature enhancement (7x7, 32 filters), mapping (1x1, 16 filters) and reconstruction
(5x5), the "9-7-1-5" network of the paper. The enhancement layer cleans the noisy features that
the blocky, ringing JPEG input produces before they are mapped to the restored image.

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, H, W), same size. The paper works
on the Y channel (1 channel in and out, 106,561 parameters); ``in_channels=out_channels=3`` is
the RGB variant (108,419 parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from restorelab.models.padding import EdgePaddedConv2d

PRESETS = {
    "paper": {"in_channels": 1, "out_channels": 1},
    "rgb": {"in_channels": 3, "out_channels": 3},
}


class ARCNN(nn.Module):
    """Four-layer AR-CNN (9-7-1-5, 64/32/16 filters by default)."""

    upscale = 1

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: tuple[int, int, int] = (64, 32, 16),
        kernel_sizes: tuple[int, int, int, int] = (9, 7, 1, 5),
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        f1, f2, f3 = features
        k1, k2, k3, k4 = kernel_sizes

        def conv(cin: int, cout: int, k: int) -> nn.Conv2d:
            return EdgePaddedConv2d(cin, cout, k, padding=k // 2, padding_mode=padding_mode)

        self.extract = conv(in_channels, f1, k1)
        self.enhance = conv(f1, f2, k2)
        self.map = conv(f2, f3, k3)
        self.reconstruct = conv(f3, out_channels, k4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.extract(x))
        x = self.act(self.enhance(x))
        x = self.act(self.map(x))
        return self.reconstruct(x)
