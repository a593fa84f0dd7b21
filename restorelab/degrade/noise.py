"""Additive noise: Gaussian (fixed or blind) and Poisson (shot) noise, batched.

Taught in chapter 3 (DnCNN): y = x + n with n ~ N(0, sigma^2); a fixed sigma trains a specialist
(DnCNN-S), a sigma drawn per sample from a range trains a blind denoiser (DnCNN-B). Chapter 7
(Real-ESRGAN) adds Poisson noise, whose variance grows with brightness like a camera's.

Images are float tensors (N, C, H, W) in [0, 1], any device. Noise levels are on the 8-bit scale
of the papers (sigma=25 adds noise of standard deviation 25/255). Following the course's
convention the noisy image is *not* clipped unless ``clip=True``.
"""

from __future__ import annotations

import torch

from restorelab.degrade.params import Range, chance, check_batch, randn, uniform


def _grey_or_colour(
    noise: torch.Tensor, grey_prob: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Per sample, with probability ``grey_prob``, the same noise in every channel."""
    grey = chance(noise.shape[0], grey_prob, generator, noise.device)
    return torch.where(grey[:, None, None, None], noise[:, :1].expand_as(noise), noise)


def gaussian_noise(
    images: torch.Tensor,
    sigma: Range,
    generator: torch.Generator | None = None,
    grey_prob: float = 0.0,
    clip: bool = False,
) -> torch.Tensor:
    """Add N(0, (sigma/255)^2) noise; ``sigma`` a number, a (low, high) range or N values.

    ``grey_prob``: chance per sample that the noise is the same in every channel (grey noise,
    as Real-ESRGAN uses). Returns a new tensor shaped like ``images``.
    """
    check_batch(images)
    n = images.shape[0]
    sigmas = uniform(n, sigma, generator, images.device).to(images.dtype) / 255
    noise = randn(images.shape, generator, images.device).to(images.dtype)
    if grey_prob > 0:
        noise = _grey_or_colour(noise, grey_prob, generator)
    out = noise.mul_(sigmas[:, None, None, None]).add_(images)  # in place: one temporary
    return out.clamp_(0, 1) if clip else out


def add_gaussian_noise(
    clean: torch.Tensor, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """One image (C, H, W) in [0, 1] -> ``clean + N(0, (sigma/255)^2)``, not clipped.

    The noise is drawn in float32 from ``generator`` (a CPU generator: the same noise on every
    device), so a seed gives the same noisy test image everywhere (chapter 3's evaluation).
    """
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
    return clean + noise.to(clean.device, clean.dtype) * (sigma / 255)


def poisson_noise(
    images: torch.Tensor,
    scale: Range = 1.0,
    generator: torch.Generator | None = None,
    grey_prob: float = 0.0,
    peak: float = 255.0,
    clip: bool = False,
) -> torch.Tensor:
    """Add Poisson (shot) noise: photon counts with mean ``image * peak``, times ``scale``.

    The noise is ``scale * (Poisson(x * peak) / peak - x)``: zero mean, variance x / peak
    (times scale^2), so bright areas are noisier. ``grey_prob``: chance per sample that the
    noise is computed on the luma and added to every channel.
    """
    check_batch(images)
    n = images.shape[0]
    scales = uniform(n, scale, generator, images.device).to(images.dtype)
    source = images.clamp(0, 1)
    if grey_prob > 0 and images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
        luma = (source * weights[:, None, None]).sum(1, keepdim=True)
        source = torch.cat([source, luma], 1)
    where = generator.device if generator is not None else source.device
    counts = torch.poisson(source.mul(peak).to(where, torch.float32), generator=generator)
    noise = (counts.to(images.device, images.dtype) / peak) - source
    if grey_prob > 0 and images.shape[1] == 3:
        grey = chance(n, grey_prob, generator, images.device)[:, None, None, None]
        noise = torch.where(grey, noise[:, 3:].expand(-1, 3, -1, -1), noise[:, :3])
    out = images + noise * scales[:, None, None, None]
    return out.clamp(0, 1) if clip else out
