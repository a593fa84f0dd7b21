"""Scanned-page damage: the six degradations of DESCAN-18K, batched, and their composition.

Taught in chapter 9 (the descanning competition). Cha et al. (AAAI 2024, "Descanning") sort
what printing, storing and scanning do to a magazine page into six degradations; each has its
function here:

* :func:`color_transition` - faded inks, a scanner tone curve (lifted blacks, dull whites),
  yellowed paper and uneven colour;
* :func:`external_noise` - dust specks and stains on the paper or the scanner glass;
* :func:`internal_noise` - the scanner itself: optical blur, sensor noise, line noise, streaks;
* :func:`bleed_through` - the back page, mirrored and blurred, showing through thin paper;
* :func:`texture_distortion` - paper grain, small warps and wrinkle creases;
* :func:`restorelab.degrade.halftone.halftone` - the printer's rotated CMYK dot screens.

:func:`scan_damage` applies them in the physical order (print, age, scan), each with a
per-sample probability from :class:`ScanConfig`. Images are float tensors (N, 3, H, W) in [0, 1]
on any device (grey (N, 1, H, W) works too); every function returns a new tensor in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from restorelab.degrade.blur import filter2d, gaussian_kernels, isotropic_blur
from restorelab.degrade.halftone import halftone
from restorelab.degrade.params import (
    Range,
    chance,
    check_batch,
    rand,
    randn,
    smooth_field,
    uniform,
)
from restorelab.io import quantize

_LUMA = (0.299, 0.587, 0.114)


def _luma(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(_LUMA, device=images.device, dtype=images.dtype)
    return (images * weights[:, None, None]).sum(1, keepdim=True)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values[:, None, None, None]


def color_transition(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    black: Range = (0.02, 0.14),
    white: Range = (0.86, 0.99),
    gamma: Range = (0.8, 1.25),
    saturation: Range = (0.55, 1.0),
    yellowing: Range = (0.0, 0.15),
    cast: Range = (-0.03, 0.03),
    uneven: Range = (0.0, 0.06),
) -> torch.Tensor:
    """Fade the inks (``saturation``), apply a tone curve (blacks lifted to ``black``, whites
    dulled to ``white``, a ``gamma``), yellow the paper, tint each channel by ``cast`` and
    brighten / darken it slowly across the page by ``uneven``; one draw of each per sample."""
    check_batch(images)
    n, c, h, w = images.shape
    dev = images.device
    sat, gam = uniform(n, saturation, generator, dev), uniform(n, gamma, generator, dev)
    lo, hi = uniform(n, black, generator, dev), uniform(n, white, generator, dev)
    yellow = uniform(n, yellowing, generator, dev)
    tint = uniform(n * 3, cast, generator, dev).view(n, 3)
    amount = uniform(n, uneven, generator, dev)
    field = smooth_field((n, 1, h, w), max(h, w) / 2, generator, dev)
    grey = _luma(images)
    out = (grey + _per_sample(sat) * (images - grey)).clamp(0, 1)
    out = out ** _per_sample(gam)
    out = _per_sample(lo) + _per_sample(hi - lo) * out
    if c == 3:
        paper = torch.stack(
            [1 + tint[:, 0], 1 - 0.4 * yellow + tint[:, 1], 1 - yellow + tint[:, 2]], 1
        )
        out = out * paper[:, :, None, None]
    out = out * (1 + _per_sample(amount) * field.clamp(-2, 2) / 2)
    return out.clamp(0, 1)


def _dust(
    n: int, size: tuple[int, int], generator, device, density: Range, radius: Range
) -> torch.Tensor:
    """Darkness (N, 1, H, W) in [0, 1] of dust specks: sparse impulses blurred to soft dots."""
    h, w = size
    per_pixel = uniform(n, density, generator, device) / 1e6
    sigma = uniform(n, radius, generator, device)
    spots = rand((n, 1, h, w), generator, device) < _per_sample(per_pixel)
    darkness = 0.35 + 0.6 * rand((n, 1, h, w), generator, device)
    impulses = spots.float() * darkness
    kernels = gaussian_kernels(2 * math.ceil(3 * float(sigma.max())) + 1, sigma)
    peak = kernels.amax((1, 2))  # scale so a lone speck reaches its darkness
    return (filter2d(impulses, kernels) / _per_sample(peak)).clamp(0, 1)


def external_noise(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    dust: Range = (40.0, 500.0),
    dust_radius: Range = (0.5, 1.4),
    stain_prob: float = 0.3,
    stain_strength: Range = (0.05, 0.25),
) -> torch.Tensor:
    """Dust specks (``dust`` per megapixel, Gaussian radius ``dust_radius`` px) and, with
    ``stain_prob`` per sample, brownish stains with darker rims (``stain_strength``)."""
    check_batch(images)
    n, c, h, w = images.shape
    dev = images.device
    specks = _dust(n, (h, w), generator, dev, dust, dust_radius)
    stained = chance(n, stain_prob, generator, dev)
    strength = uniform(n, stain_strength, generator, dev) * stained
    level = uniform(n, (1.2, 2.2), generator, dev)
    field = smooth_field((n, 1, h, w), max(h, w) / 6, generator, dev)
    blob = torch.sigmoid((field - _per_sample(level)) / 0.12)
    rim = 4 * blob * (1 - blob)
    # a brown stain absorbs blue most and red least; a grey page sees its mean
    absorb = torch.tensor([0.22, 0.49, 1.0] if c == 3 else [0.57], device=dev)
    stain = _per_sample(strength) * (0.6 * blob + 0.8 * rim) * absorb[None, :, None, None]
    out = images * (1 - stain.clamp(0, 0.9)) * (1 - specks)
    return out.clamp(0, 1)


def internal_noise(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    blur: Range = (0.3, 0.9),
    sigma: Range = (1.0, 5.0),
    line_sigma: Range = (0.0, 1.5),
    streak_prob: float = 0.3,
    streaks: int = 3,
) -> torch.Tensor:
    """The scanner's own damage: optical blur (sigma ``blur`` px), sensor noise (``sigma``, 8-bit
    levels), fixed-pattern column noise (``line_sigma``) and, with ``streak_prob`` per sample,
    up to ``streaks`` thin faint coloured lines across the page (a dirty or failing sensor)."""
    check_batch(images)
    n, c, h, w = images.shape
    dev = images.device
    out = isotropic_blur(images, blur, generator, kernel_size=5)
    noise = randn((n, c, h, w), generator, dev) * _per_sample(uniform(n, sigma, generator, dev))
    columns = randn((n, c, 1, w), generator, dev) * _per_sample(
        uniform(n, line_sigma, generator, dev)
    )
    out = out + (noise + columns) / 255
    rows = (rand((n, streaks), generator, dev) * h).floor()
    count = (rand((n,), generator, dev) * (streaks + 1)).floor() * chance(
        n, streak_prob, generator, dev
    )
    hit = (torch.arange(h, device=dev)[None, :, None] == rows[:, None, :]) & (
        torch.arange(streaks, device=dev)[None, None, :] < count[:, None, None]
    )
    line = hit.any(-1).float()[:, None, :, None]  # (N, 1, H, 1)
    colour = rand((n, c, 1, 1), generator, dev)
    alpha = 0.1 + 0.3 * rand((n, 1, 1, 1), generator, dev)
    out = out * (1 - alpha * line) + colour * alpha * line
    return out.clamp(0, 1)


def bleed_through(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    back: torch.Tensor | None = None,
    strength: Range = (0.05, 0.3),
    blur: Range = (1.0, 3.0),
) -> torch.Tensor:
    """Show the back page through the paper: mirrored left-right, blurred, desaturated, and
    multiplied in with ``strength``. ``back`` (N, C, H, W): the back pages; by default each
    sample's back is the next sample of the batch."""
    check_batch(images)
    n = images.shape[0]
    back = images.roll(1, 0) if back is None else back.to(images.device, images.dtype)
    if back.shape != images.shape:
        raise ValueError(f"back pages {tuple(back.shape)} differ from {tuple(images.shape)}")
    back = isotropic_blur(back.flip(-1), blur, generator)
    back = (back + _luma(back)) / 2
    amount = _per_sample(uniform(n, strength, generator, images.device))
    return (images * (1 - amount * (1 - back))).clamp(0, 1)


def _wrinkles(
    n: int, size, generator, device, strength: Range, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shading (N, 1, H, W) and displacement (N, 2, H, W) of up to ``count`` straight creases."""
    h, w = size
    y = torch.arange(h, device=device, dtype=torch.float32)[None, :, None]
    x = torch.arange(w, device=device, dtype=torch.float32)[None, None, :]
    shade = torch.zeros(n, h, w, device=device)
    shift = torch.zeros(n, 2, h, w, device=device)
    number = (rand((n,), generator, device) * count).floor() + 1
    for k in range(count):
        angle = uniform(n, (0.0, math.pi), generator, device)[:, None, None]
        cx = rand((n,), generator, device)[:, None, None] * w
        cy = rand((n,), generator, device)[:, None, None] * h
        width = uniform(n, (1.5, 5.0), generator, device)[:, None, None]
        amount = (
            uniform(n, strength, generator, device)[:, None, None] * (k < number)[:, None, None]
        )
        distance = (x - cx) * angle.sin() - (y - cy) * angle.cos()
        profile = torch.exp(-0.5 * (distance / width) ** 2)
        shade += amount * (distance / width) * profile
        push = amount * 10 * profile  # a fold pulls the paper by a pixel or so
        shift[:, 0] += push * angle.sin()
        shift[:, 1] -= push * angle.cos()
    return shade[:, None], shift


def texture_distortion(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    grain: Range = (0.01, 0.04),
    warp: Range = (0.0, 1.0),
    wrinkle_prob: float = 0.3,
    wrinkle_strength: Range = (0.04, 0.12),
    wrinkles: int = 3,
) -> torch.Tensor:
    """Paper grain (fine fibres and blotches, relative strength ``grain``), a smooth warp of up to
    ``warp`` pixels and, with ``wrinkle_prob`` per sample, creases lit on one side and shadowed
    on the other that also shift the print next to them."""
    check_batch(images)
    n, c, h, w = images.shape
    dev = images.device
    offset = smooth_field((n, 2, h, w), max(h, w) / 4, generator, dev) * _per_sample(
        uniform(n, warp, generator, dev)
    )
    creased = chance(n, wrinkle_prob, generator, dev)
    shade, shift = _wrinkles(n, (h, w), generator, dev, wrinkle_strength, wrinkles)
    shade, shift = shade * _per_sample(creased), shift * _per_sample(creased)
    offset = offset + shift
    y, x = torch.meshgrid(
        torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev), indexing="ij"
    )
    grid = torch.stack([x, y], -1)[None] + torch.stack(
        [offset[:, 0] * 2 / max(w - 1, 1), offset[:, 1] * 2 / max(h - 1, 1)], -1
    )
    out = F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )
    fibres = isotropic_blur(randn((n, 1, h, w), generator, dev), 0.7, kernel_size=5)
    blotches = smooth_field((n, 1, h, w), 6.0, generator, dev)
    amount = _per_sample(uniform(n, grain, generator, dev))
    texture = amount * (1.5 * fibres + 0.5 * blotches)
    return (out * (1 + texture + shade)).clamp(0, 1)


@dataclass
class ScanConfig:
    """Probabilities (per sample) and ranges of the six degradations; see each function."""

    halftone_prob: float = 0.9
    halftone_period: tuple[float, float] = (2.5, 4.5)
    halftone_visibility: tuple[float, float] = (0.4, 0.9)  # how much of the dot texture survives
    bleed_prob: float = 0.7
    bleed_strength: tuple[float, float] = (0.05, 0.3)
    colour_prob: float = 1.0
    black: tuple[float, float] = (0.02, 0.14)
    white: tuple[float, float] = (0.86, 0.99)
    saturation: tuple[float, float] = (0.55, 1.0)
    yellowing: tuple[float, float] = (0.0, 0.15)
    texture_prob: float = 0.9
    grain: tuple[float, float] = (0.01, 0.04)
    warp: tuple[float, float] = (0.0, 1.0)
    wrinkle_prob: float = 0.3
    external_prob: float = 0.8
    dust: tuple[float, float] = (40.0, 500.0)
    stain_prob: float = 0.3
    internal_prob: float = 1.0
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    streak_prob: float = 0.3


def _maybe(apply: torch.Tensor, damaged: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.where(apply[:, None, None, None], damaged, images)


def scan_damage(
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    config: ScanConfig | None = None,
    back: torch.Tensor | None = None,
) -> torch.Tensor:
    """Print, age and scan clean pages (N, C, H, W) in [0, 1]: the scan, rounded to 8 bits.

    Order: halftone, bleed-through (``back``: the back pages, see :func:`bleed_through`),
    colour transition, texture distortion, external noise, internal noise. Every random draw
    happens whatever the probabilities say, so one seed gives one scan per configuration.
    """
    check_batch(clean, "clean")
    cfg = config or ScanConfig()
    n, dev = clean.shape[0], clean.device
    apply = {
        name: chance(n, getattr(cfg, f"{name}_prob"), generator, dev)
        for name in ("halftone", "bleed", "colour", "texture", "external", "internal")
    }
    out = clean
    printed = halftone(out, generator, cfg.halftone_period)
    visible = uniform(n, cfg.halftone_visibility, generator, dev)[:, None, None, None]
    out = _maybe(apply["halftone"], out + visible * (printed - out), out)
    out = _maybe(apply["bleed"], bleed_through(out, generator, back, cfg.bleed_strength), out)
    coloured = color_transition(
        out, generator, cfg.black, cfg.white, saturation=cfg.saturation, yellowing=cfg.yellowing
    )
    out = _maybe(apply["colour"], coloured, out)
    textured = texture_distortion(out, generator, cfg.grain, cfg.warp, cfg.wrinkle_prob)
    out = _maybe(apply["texture"], textured, out)
    dirty = external_noise(out, generator, cfg.dust, stain_prob=cfg.stain_prob)
    out = _maybe(apply["external"], dirty, out)
    scanned = internal_noise(out, generator, sigma=cfg.noise_sigma, streak_prob=cfg.streak_prob)
    out = _maybe(apply["internal"], scanned, out)
    return quantize(out)
