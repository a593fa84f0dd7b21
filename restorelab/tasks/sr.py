"""Super-resolution: MATLAB-bicubic LR inputs, Y-channel scores with the border shaved.

Taught in chapter 1 (SRCNN: bicubic pre-upsampling, Y channel) and chapter 4 (SRResNet: the
network upsamples itself, RGB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from restorelab import color, metrics
from restorelab.degrade import bicubic_resize
from restorelab.infer import predict
from restorelab.io import grey_to_rgb, quantize
from restorelab.tasks.scoring import ChannelSetting, score_images


@dataclass
class SuperResolution(ChannelSetting):
    """Single-image super-resolution by ``scale`` with MATLAB-bicubic low-resolution inputs.

    ``channels="y"``: the model sees and predicts the studio-range Y channel (SRCNN's setting);
    Cb and Cr come from bicubic upsampling. ``channels="rgb"``: the model works on RGB.
    ``pre_upsample=True``: the model input is the LR image bicubic-upsampled to the target size
    (SRCNN); ``False``: the model upsamples itself (SRResNet and later).

    Evaluation follows COURSE_GUIDE section 4: HR cropped to a multiple of the scale, LR by
    MATLAB bicubic rounded to 8 bits, outputs rounded to 8 bits, PSNR/SSIM on the Y channel
    with ``scale`` pixels shaved from every border.
    """

    scale: int = 2
    channels: str = "y"
    pre_upsample: bool = True
    monitor = "psnr_y"  # class attribute, not a field

    def check(self) -> None:
        if not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(f"scale must be an integer >= 1, got {self.scale!r}")

    @property
    def min_size(self) -> int:
        """The smallest HR side that still leaves 11 pixels after the crop and the shave."""
        return self.scale * -(-(metrics.WINDOW + 2 * self.scale) // self.scale)

    def crop(self, hr: torch.Tensor) -> torch.Tensor:
        """Crop (..., H, W) to a multiple of the scale (bottom and right edges go)."""
        h, w = hr.shape[-2:]
        return hr[..., : h - h % self.scale, : w - w % self.scale]

    def degrade(self, hr: torch.Tensor) -> torch.Tensor:
        """HR RGB (N, 3, H, W) or (3, H, W) in [0, 1] -> LR RGB, 8-bit rounded."""
        return quantize(bicubic_resize(self.crop(hr), 1 / self.scale))

    def upsample(self, lr: torch.Tensor) -> torch.Tensor:
        """The bicubic baseline: LR RGB -> RGB at the target size."""
        return bicubic_resize(lr, self.scale)

    def model_input(self, lr: torch.Tensor) -> torch.Tensor:
        """LR RGB -> what the model takes (Y or RGB, upsampled or not)."""
        x = self.upsample(lr) if self.pre_upsample else lr
        return color.rgb_to_y(x) if self.channels == "y" else x

    def target(self, hr: torch.Tensor) -> torch.Tensor:
        """HR RGB -> what the model should output."""
        hr = self.crop(hr)
        return color.rgb_to_y(hr) if self.channels == "y" else hr

    def make_pair(
        self, hr: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of clean HR patches (N, 3, P, P) -> (model input, target), on their device.

        Grey patches (N, 1, P, P) are repeated to RGB first, as :meth:`evaluate` does.
        """
        hr = grey_to_rgb(hr) if hr.shape[-3] == 1 else hr
        return self.model_input(self.degrade(hr)), self.target(hr)

    def restore(self, model: nn.Module, lr: torch.Tensor, **predict_kwargs) -> torch.Tensor:
        """Super-resolve LR RGB (3, h, w) or (N, 3, h, w) -> RGB in [0, 1] at ``scale`` x size."""
        out = predict(model, self.model_input(lr), **predict_kwargs)
        if self.channels == "y":
            ycbcr = color.rgb_to_ycbcr(self.upsample(lr))
            ycbcr = torch.cat([out.to(ycbcr.dtype), ycbcr[..., 1:, :, :]], dim=-3)
            out = color.ycbcr_to_rgb(ycbcr)
        return out.clamp(0, 1)

    def score(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        """Y-channel PSNR and SSIM of an RGB output against its HR, border shaved."""
        hr = self.crop(hr)
        args = {"crop_border": self.scale, "y_channel": True}
        return {"psnr_y": metrics.psnr(sr, hr, **args), "ssim_y": metrics.ssim(sr, hr, **args)}

    def evaluate(
        self,
        model: nn.Module | None,
        images: Sequence[torch.Tensor],
        degraded: Sequence[torch.Tensor] | None = None,
        **predict_kwargs,
    ) -> dict[str, list[float]]:
        """Per-image scores of ``model`` (or of bicubic when ``model`` is None).

        ``images``: HR RGB tensors (3, H, W); grey (1, H, W) images are repeated to RGB.
        ``degraded``: given LR images (e.g. Set5's MATLAB-made ``LR_bicubic``) instead of
        degrading the HR ones here. Returns ``{"psnr_y": [...], "ssim_y": [...]}``.
        """
        images = [grey_to_rgb(hr) if hr.shape[0] == 1 else hr for hr in images]
        if degraded is not None:
            degraded = [grey_to_rgb(lr) if lr.shape[0] == 1 else lr for lr in degraded]

        def restore(lr: torch.Tensor) -> torch.Tensor:
            return self.upsample(lr) if model is None else self.restore(model, lr, **predict_kwargs)

        return score_images(images, degraded, lambda hr, _: self.degrade(hr), restore, self.score)
