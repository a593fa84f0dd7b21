"""Printing with rotated CMYK dot screens (amplitude-modulated halftone).

Taught in chapter 9 (the descanning competition). A press cannot print grey: each ink (cyan,
magenta, yellow, black) is laid down as a grid of dots whose size follows the ink amount. The
four grids are rotated (classically C 15, M 75, Y 0, K 45 degrees) so that they do not beat
into coarse moire. A dot grid of period p pixels puts peaks in the spectrum at radius 1/p
cycles/pixel along the screen's two axes: the regular texture a descanning model must remove.

Images are float tensors (N, 3, H, W) or (N, 1, H, W) in [0, 1] (grey pages get the K screen
only), any device. Each sample draws its own screen period and registration (offsets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from restorelab.degrade.params import Range, check_batch, rand, uniform

SCREEN_ANGLES = (15.0, 75.0, 0.0, 45.0)  # C, M, Y, K in degrees


def rgb_to_cmyk(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 4, H, W) ink amounts, with full grey component replacement (K)."""
    k = 1 - rgb.max(1, keepdim=True).values
    cmy = (1 - rgb - k) / (1 - k).clamp_min(1e-6)
    return torch.cat([cmy.clamp(0, 1), k], 1)


def cmyk_to_rgb(cmyk: torch.Tensor) -> torch.Tensor:
    """(N, 4, H, W) ink amounts -> (N, 3, H, W) RGB on white paper (subtractive mixing)."""
    return (1 - cmyk[:, :3]) * (1 - cmyk[:, 3:])


def dot_screen(
    size: tuple[int, int],
    period: torch.Tensor,
    angle: torch.Tensor,
    offset: torch.Tensor,
) -> torch.Tensor:
    """Threshold maps (N, 1, H, W) in [0, 1] of round-dot screens.

    ``period`` (N,) pixels, ``angle`` (N,) radians, ``offset`` (N, 2) pixels. Ink covers a pixel
    when the ink amount exceeds the threshold: dots grow from the cell centres (threshold 0)
    and merge into a checkerboard at 50 %.
    """
    h, w = size
    device = period.device
    y = torch.arange(h, device=device, dtype=torch.float32)[None, :] + offset[:, 1, None]
    x = torch.arange(w, device=device, dtype=torch.float32)[None, :] + offset[:, 0, None]
    omega = (2 * math.pi / period.float())[:, None]
    cos, sin = angle.float().cos()[:, None], angle.float().sin()[:, None]
    # cos(a x + b y) = cos(a x) cos(b y) - sin(a x) sin(b y): two outer products per screen axis
    # instead of a cosine per pixel
    spot = _plane_cos(omega * cos * x, omega * sin * y) + _plane_cos(
        -omega * sin * x, omega * cos * y
    )
    return ((1 - spot / 2) / 2)[:, None]


def _plane_cos(ax: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    """cos(ax[n, j] + by[n, i]) as (N, H, W) from the (N, W) and (N, H) phases."""
    return by.cos()[:, :, None] * ax.cos()[:, None, :] - by.sin()[:, :, None] * ax.sin()[:, None, :]


def halftone(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    period: Range = (3.0, 6.0),
    angles: Sequence[float] = SCREEN_ANGLES,
    softness: float = 0.25,
    dot_gain: Range = (0.0, 0.08),
) -> torch.Tensor:
    """Print each sample through CMYK dot screens of its own period (pixels) and registration.

    ``softness``: width of a dot's edge in threshold units (0 gives hard binary dots; printed
    and scanned dots are soft). ``dot_gain``: ink spreading, added to every ink amount.
    """
    check_batch(images)
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"halftone takes 1 or 3 channels, got {c}")
    periods = uniform(n, period, generator, images.device)
    gain = uniform(n, dot_gain, generator, images.device)[:, None, None, None]
    inks = rgb_to_cmyk(images.float()) if c == 3 else 1 - images.float()
    screens = [3] if c == 1 else range(4)
    soft = min(max(softness, 1e-6), 1.0)
    printed = []
    for k, ink in zip(screens, inks.unbind(1), strict=True):
        offset = rand((n, 2), generator, images.device) * periods[:, None]
        angle = torch.full((n,), math.radians(angles[k]), device=images.device)
        threshold = dot_screen((h, w), periods, angle, offset)
        amount = (ink[:, None] + gain * (ink[:, None] > 0)).clamp(0, 1)
        # thresholds squeezed into [s/2, 1 - s/2] so no ink prints no dot and full ink is solid
        threshold = soft / 2 + threshold * (1 - soft)
        printed.append(((amount - threshold) / soft + 0.5).clamp(0, 1))
    printed = torch.cat(printed, 1)
    out = cmyk_to_rgb(printed) if c == 3 else 1 - printed
    return out.to(images.dtype)
