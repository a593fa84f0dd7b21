"""Blur kernels and per-sample filtering: isotropic / anisotropic / generalized Gaussian, sinc.

Taught in chapter 7 (Real-ESRGAN's degradation model): every sample of a batch is blurred with
its own kernel. A Gaussian kernel is exp(-q / 2) with q = (u / sigma_x)^2 + (v / sigma_y)^2 in
coordinates (u, v) rotated by ``theta``; the generalized Gaussian uses exp(-q^beta / 2) (beta < 1:
heavy tails, beta > 1: a flat top); the sinc kernel is the ideal circular low-pass filter whose
cut-off leaves ringing, as resizing software does.

Images are float tensors (N, C, H, W), any device; kernels are (N, k, k) with odd k, summing
to 1. Filtering is one grouped convolution with reflect padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from restorelab.degrade.params import Range, check_batch, uniform


def _grid(size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    if size % 2 == 0 or size < 1:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    axis = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    return axis[None, :].expand(size, size), axis[:, None].expand(size, size)  # x, y


def gaussian_kernels(
    size: int,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor | None = None,
    theta: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, size, size) kernels from per-sample (N,) sigmas (pixels), angle (radians), beta.

    ``sigma_y=None``: isotropic; ``theta=None``: axis-aligned; ``beta=None``: Gaussian (beta=1).
    """
    sigma_x = sigma_x.float().clamp_min(1e-3)
    sigma_y = sigma_x if sigma_y is None else sigma_y.float().clamp_min(1e-3)
    theta = torch.zeros_like(sigma_x) if theta is None else theta.float()
    x, y = _grid(size, sigma_x.device)
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    u, v = cos * x + sin * y, -sin * x + cos * y
    q = (u / sigma_x[:, None, None]) ** 2 + (v / sigma_y[:, None, None]) ** 2
    if beta is not None:
        q = q.clamp_min(0) ** beta.float()[:, None, None]
    kernel = torch.exp(-0.5 * q)
    return kernel / kernel.sum((1, 2), keepdim=True)


def sinc_kernels(size: int, cutoff: torch.Tensor) -> torch.Tensor:
    """(N, size, size) circular low-pass kernels with per-sample cut-off (N,) in radians/pixel.

    cutoff = pi keeps every frequency a pixel grid holds; smaller values blur and ring.
    """
    x, y = _grid(size, cutoff.device)
    radius = torch.sqrt(x**2 + y**2)[None]
    omega = cutoff.float()[:, None, None]
    safe = radius.clamp_min(1e-6)
    kernel = omega * torch.special.bessel_j1(omega * safe) / (2 * math.pi * safe)
    centre = (omega**2 / (4 * math.pi)).expand_as(kernel)
    kernel = torch.where(radius < 1e-6, centre, kernel)
    return kernel / kernel.sum((1, 2), keepdim=True)


def identity_kernels(n: int, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, size, size) kernels that leave an image unchanged."""
    kernel = torch.zeros(n, size, size, device=device)
    kernel[:, size // 2, size // 2] = 1
    return kernel


def filter2d(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve sample i of ``images`` (N, C, H, W) with ``kernels[i]`` (N, k, k); reflect pads."""
    check_batch(images)
    n, c, h, w = images.shape
    k = kernels.shape[-1]
    if kernels.shape != (n, k, k):
        raise ValueError(f"expected kernels ({n}, k, k), got {tuple(kernels.shape)}")
    pad = k // 2
    padded = _pad(images.reshape(1, n * c, h, w), (pad, pad, pad, pad))
    weight = kernels.to(images.dtype).flip(-2, -1).repeat_interleave(c, 0)[:, None]
    return F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)


def _pad(images: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    h, w = images.shape[-2:]
    mode = "reflect" if max(pad[:2]) < w and max(pad[2:]) < h else "replicate"
    return F.pad(images, pad, mode=mode)


def separable_gaussian(images: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Round Gaussian blur with per-sample ``sigma`` (N,) as two 1-D passes (rows, then columns).

    Same result as :func:`filter2d` with :func:`gaussian_kernels`, in 2k instead of k^2
    multiplications per pixel.
    """
    check_batch(images)
    n, c, h, w = images.shape
    x = _grid(size, images.device)[0][0]  # (size,)
    kernel = torch.exp(-0.5 * (x[None] / sigma.float().clamp_min(1e-3)[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(images.dtype).repeat_interleave(c, 0)
    pad = size // 2
    out = _pad(images.reshape(1, n * c, h, w), (pad, pad, 0, 0))
    out = F.conv2d(out, kernel[:, None, None, :], groups=n * c)
    out = _pad(out, (0, 0, pad, pad))
    out = F.conv2d(out, kernel[:, None, :, None], groups=n * c)
    return out.reshape(n, c, h, w)


def _kernel_size(max_sigma: float, kernel_size: int | None) -> int:
    if kernel_size is not None:
        return kernel_size
    return 2 * math.ceil(3 * max_sigma) + 1


def _max(value: Range) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.max())
    return float(max(value)) if isinstance(value, (tuple, list)) else float(value)


def isotropic_blur(
    images: torch.Tensor,
    sigma: Range,
    generator: torch.Generator | None = None,
    kernel_size: int | None = None,
) -> torch.Tensor:
    """Blur each sample with a round Gaussian of its own ``sigma`` (pixels; number or range)."""
    check_batch(images)
    sigmas = uniform(images.shape[0], sigma, generator, images.device)
    size = _kernel_size(_max(sigma), kernel_size)
    return separable_gaussian(images, sigmas, size)


def anisotropic_blur(
    images: torch.Tensor,
    sigma_x: Range,
    sigma_y: Range,
    generator: torch.Generator | None = None,
    theta: Range = (0.0, math.pi),
    kernel_size: int | None = None,
) -> torch.Tensor:
    """Blur each sample with an elongated Gaussian: own sigmas along u and v, rotated by theta."""
    check_batch(images)
    n = images.shape[0]
    sx = uniform(n, sigma_x, generator, images.device)
    sy = uniform(n, sigma_y, generator, images.device)
    angle = uniform(n, theta, generator, images.device)
    size = _kernel_size(max(_max(sigma_x), _max(sigma_y)), kernel_size)
    return filter2d(images, gaussian_kernels(size, sx, sy, angle))
