"""Real-ESRGAN's second-order degradation: blur, resize, noise, JPEG, and all of it again.

Taught in chapter 7 (GAN / ESRGAN / Real-ESRGAN). Real photos went through several cameras,
editors and uploads; one blur + bicubic model cannot describe them, so Real-ESRGAN (Wang et al.
2021) trains on images degraded twice with random kernels, resizes, noise and JPEG, then
resized to the low resolution with an optional sinc filter (ringing).

Per sample: blur kernel (isotropic / anisotropic, Gaussian or generalized Gaussian), noise type
(Gaussian or Poisson), noise level, grey or colour noise, JPEG quality and the final sinc filter.
Per batch, as in Real-ESRGAN's own training code (a batch must share one size): the resize
factor and interpolation mode, and the order of the last JPEG and resize. Plateau kernels are
left out. Input (N, C, H, W) in [0, 1] with H, W multiples of ``scale``; output (N, C, H/scale,
W/scale), clamped and rounded to 8 bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from restorelab.degrade.blur import filter2d, gaussian_kernels, identity_kernels, sinc_kernels
from restorelab.degrade.jpeg import jpeg
from restorelab.degrade.noise import gaussian_noise, poisson_noise
from restorelab.degrade.params import chance, check_batch, choice, uniform
from restorelab.io import quantize

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass
class StageConfig:
    """One order of degradation; the defaults are Real-ESRGAN's first order."""

    blur_prob: float = 1.0
    kernel_size: int = 21
    sigma: tuple[float, float] = (0.2, 3.0)
    anisotropic_prob: float = 0.3
    generalized_prob: float = 0.15
    beta: tuple[float, float] = (0.5, 4.0)
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # 8-bit levels
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    grey_noise_prob: float = 0.4
    jpeg_quality: tuple[float, float] = (30.0, 95.0)


def _second_stage() -> StageConfig:
    return StageConfig(
        blur_prob=0.8,
        sigma=(0.2, 1.5),
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_sigma=(1.0, 25.0),
        poisson_scale=(0.05, 2.5),
    )


@dataclass
class SecondOrderConfig:
    """Real-ESRGAN x4 defaults: two :class:`StageConfig` orders and the final sinc filter."""

    scale: int = 4
    first: StageConfig = field(default_factory=StageConfig)
    second: StageConfig = field(default_factory=_second_stage)
    sinc_prob: float = 0.8
    sinc_kernel_size: int = 21


def random_kernels(
    n: int, stage: StageConfig, generator: torch.Generator | None, device: torch.device | str
) -> torch.Tensor:
    """n blur kernels (n, k, k) drawn as the stage says (identity where a sample is not blurred)."""
    sx = uniform(n, stage.sigma, generator, device)
    sy = uniform(n, stage.sigma, generator, device)
    theta = uniform(n, (0.0, math.pi), generator, device)
    beta = uniform(n, stage.beta, generator, device)
    anisotropic = chance(n, stage.anisotropic_prob, generator, device)
    generalized = chance(n, stage.generalized_prob, generator, device)
    blurred = chance(n, stage.blur_prob, generator, device)
    sy = torch.where(anisotropic, sy, sx)
    theta = torch.where(anisotropic, theta, torch.zeros_like(theta))
    beta = torch.where(generalized, beta, torch.ones_like(beta))
    kernels = gaussian_kernels(stage.kernel_size, sx, sy, theta, beta)
    identity = identity_kernels(n, stage.kernel_size, device)
    return torch.where(blurred[:, None, None], kernels, identity)


def _resize(images: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if mode == "area":
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=mode, align_corners=False)


def _noise(
    images: torch.Tensor, stage: StageConfig, generator: torch.Generator | None
) -> torch.Tensor:
    n = images.shape[0]
    use_gaussian = chance(n, stage.gaussian_noise_prob, generator, images.device)
    g = gaussian_noise(images, stage.noise_sigma, generator, stage.grey_noise_prob)
    p = poisson_noise(images, stage.poisson_scale, generator, stage.grey_noise_prob)
    return torch.where(use_gaussian[:, None, None, None], g, p).clamp(0, 1)


def _stage_resize(
    images: torch.Tensor,
    stage: StageConfig,
    generator: torch.Generator | None,
    base: tuple[int, int],
) -> torch.Tensor:
    """Resize the batch by one factor (relative to ``base``) and mode, both drawn per batch."""
    kind = int(choice(1, stage.resize_probs, generator)[0])  # 0 up, 1 down, 2 keep
    low, high = stage.resize_range
    draw = float(uniform(1, (0.0, 1.0), generator)[0])
    factor = [1 + draw * (high - 1), low + draw * (1 - low), 1.0][kind]
    mode = RESIZE_MODES[int(choice(1, (1, 1, 1), generator)[0])]
    size = (max(8, round(base[0] * factor)), max(8, round(base[1] * factor)))
    return _resize(images, size, mode)


def second_order(
    hr: torch.Tensor,
    generator: torch.Generator | None = None,
    config: SecondOrderConfig | None = None,
) -> torch.Tensor:
    """Degrade HR images (N, C, H, W) in [0, 1] to LR (N, C, H/scale, W/scale), 8-bit rounded."""
    check_batch(hr, "hr")
    config = config or SecondOrderConfig()
    n, _, h, w = hr.shape
    if h % config.scale or w % config.scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {config.scale}")
    lr_size = (h // config.scale, w // config.scale)
    first, second = config.first, config.second

    out = filter2d(hr, random_kernels(n, first, generator, hr.device))
    out = _stage_resize(out, first, generator, (h, w))
    out = jpeg(_noise(out, first, generator), first.jpeg_quality, generator)

    out = filter2d(out, random_kernels(n, second, generator, hr.device))
    out = _stage_resize(out, second, generator, lr_size)
    out = _noise(out, second, generator)

    cutoff = uniform(n, (math.pi / 3, math.pi), generator, hr.device)
    sinc = chance(n, config.sinc_prob, generator, hr.device)
    kernels = torch.where(
        sinc[:, None, None],
        sinc_kernels(config.sinc_kernel_size, cutoff),
        identity_kernels(n, config.sinc_kernel_size, hr.device),
    )
    mode = RESIZE_MODES[int(choice(1, (1, 1, 1), generator)[0])]
    if bool(chance(1, 0.5, generator)[0]):  # resize + sinc, then JPEG
        out = filter2d(_resize(out, lr_size, mode), kernels)
        out = jpeg(out.clamp(0, 1), second.jpeg_quality, generator)
    else:  # JPEG, then resize + sinc
        out = jpeg(out, second.jpeg_quality, generator)
        out = filter2d(_resize(out, lr_size, mode), kernels)
    return quantize(out)
