"""Inpainting damage: free-form strokes, boxes and scattered holes, with a coverage range.

Taught in chapter 8 (the clustered inpainter). A mask is a float tensor (N, 1, H, W) with 1 where
pixels are missing and 0 where they are known. Shapes are drawn per sample, in rounds, until
the hole fraction reaches a per-sample target drawn from ``coverage``; a shape that would take a
sample past the upper bound is rejected, and boxes no larger than the remaining gap top the
sample up, so every mask's coverage lies within the configured range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from restorelab.degrade.noise import gaussian_noise
from restorelab.degrade.params import Range, check_batch, choice, rand, uniform

MASK_KINDS = ("strokes", "boxes", "holes")


@dataclass
class MaskConfig:
    """What the masks look like. Sizes are fractions of the shorter image side."""

    kinds: tuple[str, ...] = MASK_KINDS
    coverage: tuple[float, float] = (0.1, 0.4)
    stroke_width: tuple[float, float] = (0.03, 0.08)
    stroke_vertices: tuple[int, int] = (4, 10)
    stroke_step: tuple[float, float] = (0.08, 0.25)
    box_side: tuple[float, float] = (0.1, 0.35)
    hole_radius: tuple[float, float] = (0.015, 0.04)
    holes_per_round: int = 8
    max_rounds: int = 24
    noise_sigma: Range = 0.0  # Gaussian noise on the known pixels, 8-bit levels
    fill: float = 0.0  # value written into the holes

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(MASK_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {MASK_KINDS}, got {self.kinds}")
        low, high = self.coverage
        if not 0 <= low <= high < 1:
            raise ValueError(
                f"coverage must be (low, high) with 0 <= low <= high < 1, got {self.coverage}"
            )


def _segment_distance(
    px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Distance (N, H, W) from every pixel to the segment a[i] -> b[i] (a, b: (N, 2) as x, y)."""
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]
    dx, dy = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
    length2 = (dx**2 + dy**2).clamp_min(1e-6)
    t = (((px - ax) * dx + (py - ay) * dy) / length2).clamp(0, 1)
    return torch.hypot(px - ax - t * dx, py - ay - t * dy)


def pixel_coordinates(size: tuple[int, int], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of an (H, W) image as float tensors (1, H, 1) and (1, 1, W)."""
    h, w = size
    py = torch.arange(h, device=device, dtype=torch.float32)[None, :, None]
    px = torch.arange(w, device=device, dtype=torch.float32)[None, None, :]
    return py, px


def stroke_masks(
    n: int, size: tuple[int, int], generator: torch.Generator | None, config: MaskConfig, device
) -> torch.Tensor:
    """One free-form stroke per sample (N, H, W) bool: a thick random polyline."""
    h, w = size
    side = min(h, w)
    py, px = pixel_coordinates(size, device)
    lo_v, hi_v = config.stroke_vertices
    vertices = (lo_v + rand((n,), generator, device) * (hi_v - lo_v + 1)).floor()
    width = uniform(n, config.stroke_width, generator, device) * side
    point = rand((n, 2), generator, device) * torch.tensor([w - 1, h - 1], device=device)
    angle = uniform(n, (0.0, 2 * math.pi), generator, device)
    mask = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for k in range(hi_v - 1):
        angle = angle + uniform(n, (-1.2, 1.2), generator, device)
        step = uniform(n, config.stroke_step, generator, device) * side
        move = torch.stack([angle.cos(), angle.sin()], 1) * step[:, None]
        upper = torch.tensor([w - 1, h - 1], device=device, dtype=torch.float32)
        nxt = torch.minimum(torch.maximum(point + move, torch.zeros_like(point)), upper)
        active = (k + 1 < vertices)[:, None, None]
        near = _segment_distance(px, py, point, nxt) <= width[:, None, None] / 2
        mask |= near & active
        point = nxt
    return mask


def box_masks(
    n: int,
    size: tuple[int, int],
    generator: torch.Generator | None,
    device,
    heights: torch.Tensor,
    widths: torch.Tensor,
) -> torch.Tensor:
    """One box per sample (N, H, W) bool, of the given integer heights and widths, anywhere."""
    h, w = size
    heights, widths = heights.clamp(1, h), widths.clamp(1, w)
    top = (rand((n,), generator, device) * (h - heights + 1)).floor()
    left = (rand((n,), generator, device) * (w - widths + 1)).floor()
    rows = torch.arange(h, device=device)[None, :]
    cols = torch.arange(w, device=device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + heights)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + widths)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def hole_masks(
    n: int, size: tuple[int, int], generator: torch.Generator | None, config: MaskConfig, device
) -> torch.Tensor:
    """A handful of scattered round holes per sample (N, H, W) bool."""
    h, w = size
    side = min(h, w)
    py, px = pixel_coordinates(size, device)
    mask = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for _ in range(config.holes_per_round):
        cx = rand((n,), generator, device)[:, None, None] * (w - 1)
        cy = rand((n,), generator, device)[:, None, None] * (h - 1)
        radius = uniform(n, config.hole_radius, generator, device)[:, None, None] * side
        mask |= (px - cx) ** 2 + (py - cy) ** 2 <= radius**2
    return mask


def _candidates(kind: torch.Tensor, size, generator, config: MaskConfig, device) -> torch.Tensor:
    n, (h, w) = kind.shape[0], size
    side = min(h, w)
    candidate = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for k, name in enumerate(MASK_KINDS):
        chosen = kind == k
        if name not in config.kinds or not bool(chosen.any()):
            continue
        if name == "strokes":
            shapes = stroke_masks(n, size, generator, config, device)
        elif name == "boxes":
            bh = (uniform(n, config.box_side, generator, device) * side).round()
            bw = (uniform(n, config.box_side, generator, device) * side).round()
            shapes = box_masks(n, size, generator, device, bh, bw)
        else:
            shapes = hole_masks(n, size, generator, config, device)
        candidate = torch.where(chosen[:, None, None], shapes, candidate)
    return candidate


def random_masks(
    n: int,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    config: MaskConfig | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """n masks (n, 1, H, W) float, 1 = missing, each of one kind drawn from ``config.kinds``.

    The hole fraction of every mask lies in ``config.coverage`` (inclusive).
    """
    config = config or MaskConfig()
    h, w = size
    area = h * w
    low, high = config.coverage
    kind_probs = [1.0 if name in config.kinds else 0.0 for name in MASK_KINDS]
    kind = choice(n, kind_probs, generator, device)
    target = uniform(n, config.coverage, generator, device)
    mask = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for _ in range(config.max_rounds):
        coverage = mask.float().mean((1, 2))
        wanting = coverage < target
        if not bool(wanting.any()):
            break
        merged = mask | _candidates(kind, size, generator, config, device)
        fits = merged.float().mean((1, 2)) <= high
        mask = torch.where((wanting & fits)[:, None, None], merged, mask)
    for _ in range(16):  # top up with boxes no larger than the gap to the upper bound
        coverage = mask.float().mean((1, 2))
        short = coverage < low
        if not bool(short.any()):
            break
        room = ((high - coverage) * area).floor().clamp_min(1)
        gap = ((target - coverage) * area).ceil().clamp_min(1)
        budget = torch.minimum(gap, room)
        aspect = uniform(n, (0.5, 2.0), generator, device)
        bh = (budget * aspect).sqrt().floor().clamp(1, h)
        bw = (budget / bh).floor().clamp(1, w)
        boxes = box_masks(n, size, generator, device, bh, bw)
        mask = torch.where(short[:, None, None], mask | boxes, mask)
    short = mask.float().mean((1, 2)) < low
    if bool(short.any()):  # rare: finish exactly with random free pixels
        need = (math.ceil(low * area) - mask.flatten(1).sum(1)).clamp_min(0)
        order = rand((n, area), generator, device).masked_fill(mask.flatten(1), 2.0)
        ranks = order.argsort(1).argsort(1)
        extra = (ranks < need[:, None]) & short[:, None]
        mask = mask | extra.view(n, h, w)
    return mask[:, None].float()


def inpainting_damage(
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    config: MaskConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(damaged, mask) for clean images (N, C, H, W) in [0, 1].

    damaged = (clean + noise) where known, ``config.fill`` in the holes; mask (N, 1, H, W),
    1 = missing. The noise (``config.noise_sigma``, 8-bit levels) is clipped to [0, 1].
    """
    check_batch(clean, "clean")
    config = config or MaskConfig()
    n, _, h, w = clean.shape
    mask = random_masks(n, (h, w), generator, config, clean.device).to(clean.dtype)
    noisy = gaussian_noise(clean, config.noise_sigma, generator, clip=True)
    damaged = noisy * (1 - mask) + config.fill * mask
    return damaged, mask
