"""A small multilayer perceptron: the generator and discriminator of chapter 7's 2-D toy GANs.

Taught in chapter 7, where GAN failure modes (mode collapse, a discriminator that wins) are shown
in seconds on points of the plane before they are met on images. Shapes: (N, in_features) ->
(N, out_features); hidden layers of ``hidden`` units with LeakyReLU 0.2.
"""

from __future__ import annotations

import torch
from torch import nn

PRESETS = {
    "paper": {"in_features": 2, "out_features": 2, "hidden": 128, "layers": 3},
}


class MLP(nn.Module):
    """``layers`` linear layers (``layers - 1`` hidden ones of ``hidden`` units, LeakyReLU 0.2)."""

    upscale = None  # not an image model

    def __init__(
        self, in_features: int = 2, out_features: int = 2, hidden: int = 128, layers: int = 3
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {layers}")
        widths = [in_features] + [hidden] * (layers - 1) + [out_features]
        body: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False)):
            body.append(nn.Linear(cin, cout))
            if i < layers - 1:
                body.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
