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
import torch.nn.functional as F

ImageLike = torch.Tensor | np.ndarray


def _to_batch_uint8(image: ImageLike) -> torch.Tensor:
    """Any accepted input -> uint8-valued float64 tensor (N, C, H, W) in [0, 255]."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"numpy inputs must be uint8 (H, W) or (H, W, C), got {image.dtype}")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3:
            raise ValueError(f"numpy inputs must be (H, W) or (H, W, C), got {image.shape}")
        return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].double()
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor or a uint8 numpy array, got {type(image)}")
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(
            f"tensor inputs must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}"
        )
    if image.dtype == torch.uint8:
        return image.double()
    return image.detach().double().clamp(0, 1).mul(255).round()


def _prepare(pred: ImageLike, target: ImageLike, crop_border: int, y_channel: bool):
    a = _to_batch_uint8(pred)
    b = _to_batch_uint8(target).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if y_channel and a.shape[1] == 3:
        weights = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=a.device)
        a, b = ((x * weights[:, None, None]).sum(1, keepdim=True) / 255 + 16 for x in (a, b))
    if crop_border:
        if 2 * crop_border >= min(a.shape[-2:]):
            raise ValueError(
                f"crop_border={crop_border} leaves nothing of a {tuple(a.shape[-2:])} image"
            )
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(
    pred: ImageLike, target: ImageLike, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio in dB (peak 255, float64); ``inf`` for identical images."""
    a, b = _prepare(pred, target, crop_border, y_channel)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(255.0**2 / mse)).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: ImageLike, target: ImageLike, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Structural similarity (Gaussian window 11, sigma 1.5), mean over channels and images."""
    a, b = _prepare(pred, target, crop_border, y_channel)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    n, c = a.shape[:2]
    g = _gaussian_window().to(a.device)
    window = (g[:, None] * g[None, :]).expand(c, 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean(dim=(1, 2, 3)).mean())


def full_range_y(image: ImageLike) -> torch.Tensor:
    """8-bit full-range luma as OpenCV computes it: (4899 R + 9617 G + 1868 B + 2^13) >> 14.

    Returns an int64 tensor (N, 1, H, W). 1-channel inputs are taken as luma already.
    """
    x = _to_batch_uint8(image).long()
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (4899 * r + 9617 * g + 1868 * b + (1 << 13)) >> 14


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
        try:
            self.model = lpips.LPIPS(net=net, pnet_rand=not pretrained_backbone, verbose=False)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            raise RuntimeError(
                f"LPIPS could not load the ImageNet weights of its {net} backbone ({error}). "
                "They download automatically from download.pytorch.org (as on Colab); offline, "
                "copy the torchvision checkpoint into ~/.cache/torch/hub/checkpoints/, or pass "
                "pretrained_backbone=False for tests only."
            ) from error
        self.model.eval().requires_grad_(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return self.model(pred * 2 - 1, target * 2 - 1).flatten()
