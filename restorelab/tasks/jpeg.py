"""JPEG artefact removal: the real codec at a fixed quality, scores on the Y channel.

Taught in chapter 2 (AR-CNN, Dong et al., ICCV 2015). Images are compressed as grey / Y
(BT.601 studio-range luma, as the paper), scored with PSNR, SSIM and PSNR-B (Yim & Bovik 2011),
with no border shave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from restorelab import color, metrics
from restorelab.degrade.jpeg import jpeg
from restorelab.infer import predict
from restorelab.io import grey_to_rgb, to_levels
from restorelab.tasks.scoring import ChannelSetting, score_images


def _as_uint8_values(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) or (N, C, H, W) float in [0, 1] -> float64 (N, C, H, W) of 8-bit values."""
    image = image[None] if image.ndim == 3 else image
    return to_levels(image.double(), torch.float64)


def blocking_effect_factor(image: torch.Tensor, block: int = 8) -> torch.Tensor:
    """BEF of Yim & Bovik (2011) per image, on 8-bit values: (N,) float64."""
    x = _as_uint8_values(image)
    h, w = x.shape[-2:]
    dh = (x[..., :, 1:] - x[..., :, :-1]) ** 2  # horizontal neighbours (column j, j+1)
    dv = (x[..., 1:, :] - x[..., :-1, :]) ** 2
    on_h = (torch.arange(1, w, device=x.device) % block) == 0  # pair crosses a block boundary
    on_v = (torch.arange(1, h, device=x.device) % block) == 0
    d_b = dh[..., on_h].sum((1, 2, 3)) + dv[..., on_v, :].sum((1, 2, 3))
    d_bc = dh[..., ~on_h].sum((1, 2, 3)) + dv[..., ~on_v, :].sum((1, 2, 3))
    c = x.shape[1]
    n_b = c * (h * int(on_h.sum()) + w * int(on_v.sum()))
    n_bc = c * (h * int((~on_h).sum()) + w * int((~on_v).sum()))
    d_b, d_bc = d_b / max(n_b, 1), d_bc / max(n_bc, 1)
    eta = math.log2(block) / math.log2(min(h, w)) if min(h, w) > 1 else 0.0
    return torch.where(d_b > d_bc, eta * (d_b - d_bc), torch.zeros_like(d_b))


def psnr_b(pred: torch.Tensor, target: torch.Tensor, block: int = 8) -> float:
    """PSNR-B in dB: PSNR with the blocking-effect factor of ``pred`` added to the MSE."""
    a, b = _as_uint8_values(pred), _as_uint8_values(target)
    if a.shape != b.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse_b = ((a - b) ** 2).mean(dim=(1, 2, 3)) + blocking_effect_factor(pred, block)
    return float((10 * torch.log10(255.0**2 / mse_b)).mean())


@dataclass
class JPEGArtifacts(ChannelSetting):
    """Remove the artefacts of JPEG at ``quality`` (1 = worst, 100 = best).

    ``channels="y"``: the model sees and predicts one channel, grey or the studio-range Y of
    RGB inputs (AR-CNN's setting). ``channels="rgb"``: colour JPEG (4:2:0) and RGB outputs.
    """

    quality: int = 10
    channels: str = "y"
    monitor = "psnr"  # class attribute, not a field

    def check(self) -> None:
        if not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be an integer from 1 to 100, got {self.quality!r}")

    def target(self, clean: torch.Tensor) -> torch.Tensor:
        """Clean RGB or grey (C, H, W) / (N, C, H, W) -> what the model should output."""
        if self.channels == "y":
            return color.rgb_to_y(clean) if clean.shape[-3] == 3 else clean
        return grey_to_rgb(clean) if clean.shape[-3] == 1 else clean

    def degrade(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Clean image(s) -> the JPEG-compressed model channels, on the same device."""
        x = self.target(clean)
        single = x.ndim == 3
        out = jpeg(x[None] if single else x, self.quality, generator)
        return out[0] if single else out

    def make_pair(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A clean batch (N, C, P, P) -> (JPEG-compressed, clean) in the model's channels."""
        target = self.target(clean)
        return jpeg(target, self.quality, generator), target

    def restore(self, model: nn.Module, degraded: torch.Tensor, **predict_kwargs) -> torch.Tensor:
        """Restore a JPEG-compressed image (model channels) -> clamped to [0, 1]."""
        return predict(model, degraded, **predict_kwargs).clamp(0, 1)

    def score(self, restored: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
        """PSNR, SSIM and PSNR-B (8-bit, peak 255, no shave) of ``restored`` vs clean target."""
        target = self.target(clean)
        return {
            "psnr": metrics.psnr(restored, target),
            "ssim": metrics.ssim(restored, target),
            "psnr_b": psnr_b(restored, target),
        }

    def evaluate(
        self,
        model: nn.Module | None,
        images: Sequence[torch.Tensor],
        degraded: Sequence[torch.Tensor] | None = None,
        **predict_kwargs,
    ) -> dict[str, list[float]]:
        """Per-image scores of ``model`` (or of the JPEG input itself when ``model`` is None)."""
        if degraded is not None:
            degraded = [self.target(x) for x in degraded]

        def restore(x: torch.Tensor) -> torch.Tensor:
            return x if model is None else self.restore(model, x, **predict_kwargs)

        return score_images(
            images, degraded, lambda clean, _: self.degrade(clean), restore, self.score
        )
