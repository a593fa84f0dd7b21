"""DnCNN: Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image
Denoising" (TIP 2017).

Taught in chapter 3 (denoising, residual learning). A plain stack of 3x3 convolutions:
Conv+ReLU, then ``depth - 2`` times Conv+BatchNorm+ReLU, then a Conv. The network predicts the
*noise* ``v`` and returns ``x - v``: the residual of a noisy image is closer to a simple
distribution than the clean image, which is what makes the deep plain network train well
(together with batch normalisation).

Configurations (the layer layout and biases follow KAIR's ``network_dncnn.py``, whose
checkpoints :func:`restorelab.models.load_official` reads; every conv has a bias):

- ``"paper"``: DnCNN-S, 17 layers, 64 channels, grey, one noise level: 557,057 parameters.
- ``"color_blind"``: CDnCNN-B, 20 layers, RGB, blind to the noise level: 670,531 parameters.
- ``"gray_blind"``: DnCNN-B, 20 layers, grey: 668,225 parameters.
- ``"small"``: chapter 3's QUICK network, 8 layers of 32 features without batch norm, grey:
  56,097 parameters (``restorelab train --model dncnn --preset small --task denoise``).

KAIR's released files have the batch norms folded into the convolutions (``batch_norm=False``,
555,137 parameters for 17 layers): same network at test time, fewer tensors.

Shapes: (N, in_channels, H, W), noisy, roughly in [0, 1] (not clipped) -> (N, out_channels, H, W).
The input and output channel counts must agree (the output is ``x - noise``).
"""

from __future__ import annotations

import torch
from torch import nn

PRESETS = {
    "paper": {"in_channels": 1, "out_channels": 1, "depth": 17},
    "gray_blind": {"in_channels": 1, "out_channels": 1, "depth": 20},
    "color_blind": {"in_channels": 3, "out_channels": 3, "depth": 20},
    "small": {"in_channels": 1, "out_channels": 1, "depth": 8, "features": 32, "batch_norm": False},
}


class DnCNN(nn.Module):
    """``depth`` conv layers predicting the noise; ``forward`` returns ``x - noise``."""

    upscale = 1

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        depth: int = 17,
        features: int = 64,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(
                "DnCNN subtracts its output from the input: in_channels == out_channels"
            )
        # one flat Sequential, indexed like KAIR's so its checkpoints load by name
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features, eps=1e-4))  # KAIR's eps
            layers.append(nn.ReLU(True))
        layers.append(nn.Conv2d(features, out_channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted noise map (what the network actually learns)."""
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.model(x)
