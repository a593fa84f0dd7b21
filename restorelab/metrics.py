"""Image quality metrics with the course's conventions (COURSE_GUIDE section 4).

Taught in chapter 0. Inputs are float tensors in [0, 1] shaped (C, H, W) or (N, C, H, W), or
uint8 numpy arrays (H, W) / (H, W, C). Float inputs are clamped, scaled to 255 and rounded to
8 bits before any metric, as saved images are. For a batch the result is the mean over images.

* ``psnr``: float64, peak 255. ``y_channel=True`` measures the BT.601 studio-range Y of RGB
  inputs (the SR convention); ``crop_border`` shaves that many pixels from every side.
* ``ssim``: Wang et al.'s SSIM with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, on the valid region, averaged over channels (the BasicSR / scikit-image form).
* ``y_mae``: the descanning competition's metric: mean absolute error of the full-range Y
  (OpenCV's RGB -> YUV, 8-bit integer arithmetic), per pixel.
* :class:`LPIPS`: learned perceptual distance (chapter 7), via the ``lpips`` package.
"""

from __future__ import annotations

import numpy as np
import torch

from restorelab.io import to_levels

ImageLike = torch.Tensor | np.ndarray

# SSIM's window and constants (Wang et al. 2004, 8-bit peak)
WINDOW, WINDOW_SIGMA = 11, 1.5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
# rows of a strip times its width times images times channels: the float64 working set of one
# strip stays near this many values (8 MB), whatever the image size
STRIP_VALUES = 2**20


def _as_batch(image: ImageLike) -> torch.Tensor:
    """Any accepted input -> a (N, C, H, W) view of it (uint8 or float), nothing copied."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"numpy inputs must be uint8 (H, W) or (H, W, C), got {image.dtype}")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3:
            raise ValueError(f"numpy inputs must be (H, W) or (H, W, C), got {image.shape}")
        return torch.from_numpy(image).permute(2, 0, 1)[None]
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor or a uint8 numpy array, got {type(image)}")
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(
            f"tensor inputs must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}"
        )
    return image.detach()


def _levels(x: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """A (N, C, H, W) uint8 or [0, 1] float tensor -> float64 8-bit values in [0, 255].

    ``y_channel``: RGB -> the BT.601 studio-range Y (N, 1, H, W), on the 0-255 scale.
    """
    x = x.double() if x.dtype == torch.uint8 else to_levels(x.double(), torch.float64)
    if y_channel and x.shape[1] == 3:
        weights = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=x.device)
        x = (x * weights[:, None, None]).sum(1, keepdim=True) / 255 + 16
    return x


def _pair(pred: ImageLike, target: ImageLike, crop_border: int):
    """Both images as (N, C, H, W) views, checked to match, ``crop_border`` shaved."""
    a, b = _as_batch(pred), _as_batch(target)
    if a.shape != b.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if crop_border:
        if 2 * crop_border >= min(a.shape[-2:]):
            raise ValueError(
                f"crop_border={crop_border} leaves nothing of a {tuple(a.shape[-2:])} image"
            )
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def _strips(a: torch.Tensor, b: torch.Tensor, y_channel: bool, halo: int):
    """Two (N, C, H, W) images as float64 8-bit values, one horizontal strip at a time.

    Yields ``(a, b)`` strips (N, C', h, W) that overlap the next strip by ``halo`` rows.
    Converting strip by strip keeps the memory of PSNR/SSIM small on very large images.
    """
    n, c, h, w = a.shape
    step = max(STRIP_VALUES // (n * c * w), 1)
    for top in range(0, max(h - halo, 1), step):
        bottom = min(top + step + halo, h)
        yield (
            _levels(a[..., top:bottom, :], y_channel),
            _levels(b[..., top:bottom, :].to(a.device), y_channel),
        )


def psnr(
    pred: ImageLike, target: ImageLike, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio in dB (peak 255, float64); ``inf`` for identical images."""
    squared, count = 0.0, 0
    for a, b in _strips(*_pair(pred, target, crop_border), y_channel, halo=0):
        squared = squared + ((a - b) ** 2).sum(dim=(1, 2, 3))
        count += a[0].numel()
    return float((10 * torch.log10(255.0**2 / (squared / count))).mean())


def _gaussian_window(size: int = WINDOW, sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_rows(x: torch.Tensor, g: list[float]) -> torch.Tensor:
    """1-D valid-region blur of (..., H, W) along H: weighted shifted views, added in place."""
    rows = x.shape[-2] - len(g) + 1
    out = x[..., :rows, :] * g[0]
    for i in range(1, len(g)):
        out.add_(x[..., i : i + rows, :], alpha=g[i])
    return out


def _blur(x: torch.Tensor, g: list[float]) -> torch.Tensor:
    """Valid-region Gaussian blur of (..., H, W) as two 1-D passes (the window is separable).

    2 x 11 multiply-adds per pixel instead of the 121 of the 2-D window, and no im2col buffer
    121 times the image. The second pass runs on the transposed image, so both read rows.
    """
    once = _blur_rows(x, g).transpose(-1, -2).contiguous()
    return _blur_rows(once, g).transpose(-1, -2)


def ssim(
    pred: ImageLike, target: ImageLike, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Structural similarity (Gaussian window 11, sigma 1.5), mean over channels and images.

    Computed strip by strip with the separable window, so memory stays bounded on large images.
    """
    a, b = _pair(pred, target, crop_border)
    if min(a.shape[-2:]) < WINDOW:
        shaved = f" after shaving {crop_border} pixels" if crop_border else ""
        raise ValueError(
            f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got "
            f"{tuple(a.shape[-2:])}{shaved}"
        )
    g = _gaussian_window().tolist()
    total, count = 0.0, 0
    for x, y in _strips(a, b, y_channel, halo=WINDOW - 1):
        mu_x, mu_y, xx, yy, xy = _blur(torch.stack([x, y, x * x, y * y, x * y]), g)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + C1) * (2 * cov + C2)) / (
            (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
        )
        total = total + ssim_map.sum(dim=(1, 2, 3))
        count += ssim_map[0].numel()
    return float((total / count).mean())


def full_range_y(image: ImageLike) -> torch.Tensor:
    """8-bit full-range luma as OpenCV computes it: (4899 R + 9617 G + 1868 B + 2^13) >> 14.

    Returns an int64 tensor (N, 1, H, W). 1-channel inputs are taken as luma already.
    """
    x = _levels(_as_batch(image)).long()
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (4899 * r + 9617 * g + 1868 * b + (1 << 13)) >> 14


LOWER_IS_BETTER = frozenset({"y_mae", "lpips", "niqe"})  # every other score: higher is better


def y_mae(pred: ImageLike, target: ImageLike) -> float:
    """The competition metric: mean |Y_pred - Y_target| over pixels, full-range 8-bit Y."""
    a, b = full_range_y(pred), full_range_y(target)
    if a.shape != b.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).abs().double().mean())


class LPIPS(torch.nn.Module):
    """Learned perceptual image patch similarity (Zhang et al. 2018), lower is more similar.

    Taught in chapter 7. Wraps ``lpips.LPIPS``: the backbone (AlexNet by default) comes with
    ImageNet weights from torchvision's download server, and the package ships the linear
    calibration layers. ``pretrained_backbone=False`` uses a random backbone: only for tests,
    its numbers mean nothing. Inputs: (N, 3, H, W) or (N, 1, H, W) in [0, 1]; returns (N,).
    """

    def __init__(self, net: str = "alex", pretrained_backbone: bool = True) -> None:
        super().__init__()
        try:
            import lpips
        except ImportError as error:
            raise ImportError("LPIPS needs the lpips package: pip install lpips") from error
        from restorelab.backbones import (
            LPIPS_BACKBONES,
            MissingWeightsError,
            imagenet_weights,
            quiet_download,
        )

        try:
            with quiet_download():
                self.model = lpips.LPIPS(net=net, pnet_rand=not pretrained_backbone, verbose=False)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            weights = imagenet_weights(LPIPS_BACKBONES[net])
            raise MissingWeightsError(weights, error, prefix=f"LPIPS ({net}): ") from error
        self.model.eval().requires_grad_(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return self.model(pred * 2 - 1, target * 2 - 1).flatten()
