"""Gaussian denoising (chapter 3, DnCNN): noise added to the float image, no clipping.

Evaluation follows COURSE_GUIDE section 4: noise with a fixed seed per image, the noisy input
not clipped, outputs clamped to [0, 1] and rounded to 8 bits before PSNR/SSIM (peak 255), RGB
for colour sets, one channel for grey sets, no border shave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from restorelab import metrics
from restorelab.degrade.noise import add_gaussian_noise, gaussian_noise
from restorelab.infer import predict
from restorelab.io import grey_to_rgb
from restorelab.tasks.scoring import ChannelSetting, score_images


class Direct(nn.Module):
    """Wrap a DnCNN so that it predicts the clean image directly (no residual).

    ``DnCNN.forward`` returns ``x - f(x)``; this returns ``f(x)``: the "non-residual" network
    of the chapter's residual-vs-direct comparison (same layers, same parameters).
    """

    def __init__(self, dncnn: nn.Module) -> None:
        super().__init__()
        self.dncnn = dncnn
        self.upscale = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dncnn.noise(x)


@dataclass
class Denoising(ChannelSetting):
    """Additive white Gaussian noise of level ``sigma`` (on the 0-255 scale).

    ``sigma_range``: (low, high) for blind training (each training sample draws its own level);
    evaluation always uses ``sigma``. ``channels``: ``"grey"`` (BT.601 luma, one channel) or
    ``"rgb"``.
    """

    sigma: float = 25
    sigma_range: tuple[float, float] | None = None
    channels: str = "grey"
    seed: int = 0
    one_channel = "grey"
    monitor = "psnr"  # class attribute, not a field

    def check(self) -> None:
        levels = [self.sigma, *(self.sigma_range or ())]
        if not all(math.isfinite(level) and level >= 0 for level in levels):
            raise ValueError(f"noise levels must be finite and >= 0, got sigma={self.sigma!r}, "
                             f"sigma_range={self.sigma_range!r}")  # fmt: skip
        if self.sigma_range and self.sigma_range[0] > self.sigma_range[1]:
            raise ValueError(
                f"sigma_range must be (low, high) with low <= high, got {self.sigma_range}"
            )

    def target(self, clean: torch.Tensor) -> torch.Tensor:
        """Clean image(s) -> the channels the model works on."""
        if self.channels == "grey" and clean.shape[-3] == 3:
            r, g, b = clean[..., :1, :, :], clean[..., 1:2, :, :], clean[..., 2:, :, :]
            return 0.299 * r + 0.587 * g + 0.114 * b  # full-range BT.601 luma
        if self.channels == "rgb" and clean.shape[-3] == 1:
            return grey_to_rgb(clean)
        return clean

    def make_pair(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch (N, C, P, P) of clean patches -> (noisy, clean), on their device."""
        clean = self.target(clean)
        sigma = self.sigma if self.sigma_range is None else self.sigma_range
        return gaussian_noise(clean, sigma, generator), clean

    def degrade(self, clean: torch.Tensor, index: int = 0) -> torch.Tensor:
        """One image (C, H, W) -> noisy, with noise seeded by ``seed + index`` (reproducible)."""
        clean = self.target(clean)
        g = torch.Generator(device="cpu").manual_seed(self.seed + index)
        return add_gaussian_noise(clean, self.sigma, g)

    def restore(self, model: nn.Module, noisy: torch.Tensor, **predict_kwargs) -> torch.Tensor:
        return predict(model, noisy, **predict_kwargs).clamp(0, 1)

    def score(self, out: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
        """PSNR and SSIM on all channels, no border shave (clamped, 8-bit rounded)."""
        out, clean = out.clamp(0, 1), self.target(clean)
        return {"psnr": metrics.psnr(out, clean), "ssim": metrics.ssim(out, clean)}

    def evaluate(
        self,
        model: nn.Module | None,
        images: Sequence[torch.Tensor],
        degraded: Sequence[torch.Tensor] | None = None,
        **predict_kwargs,
    ) -> dict[str, list[float]]:
        """Per-image scores of ``model`` (or of the noisy input when ``model`` is None)."""

        def restore(noisy: torch.Tensor) -> torch.Tensor:
            return noisy if model is None else self.restore(model, noisy, **predict_kwargs)

        return score_images(images, degraded, self.degrade, restore, self.score)
