"""Random parameters for batched degradations: one value per sample, from a seeded generator.

Taught in chapter 3 (blind denoising draws a noise level per sample) and used by every
degradation of :mod:`restorelab.degrade`. A parameter is given as a number (every sample gets it),
a ``(low, high)`` range (each sample draws its own value, uniformly) or a tensor of N values.

Random numbers are drawn on the *generator's* device and then moved to the images' device, so a
CPU generator works for CUDA tensors too (pass ``torch.Generator("cuda")`` to keep large noise
fields on the GPU). The same seed gives the same numbers on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Range = float | tuple[float, float] | torch.Tensor


def make_generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded by ``(seed, *keys)``, e.g. ``(seed, index)`` for one sample.

    Mixing the keys with numpy's ``SeedSequence`` makes ``(1, 2)`` and ``(2, 1)`` unrelated, so
    per-sample randomness is a function of (seed, index) and never of worker or global state.
    """
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2)
    generator = torch.Generator(device=device)
    generator.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return generator


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def rand(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str
) -> torch.Tensor:
    """Uniform [0, 1) float32 numbers of ``shape`` on ``device``, drawn from ``generator``."""
    values = torch.rand(tuple(shape), generator=generator, device=_device(generator))
    return values.to(device)


def randn(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str
) -> torch.Tensor:
    """Standard normal float32 numbers of ``shape`` on ``device``, drawn from ``generator``."""
    values = torch.randn(tuple(shape), generator=generator, device=_device(generator))
    return values.to(device)


def uniform(
    n: int, value: Range, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """One float32 value per sample, shape (n,): a number repeated, a range drawn, or a tensor.

    A range always consumes n random numbers, even when low == high, so the stream of random
    numbers (and every later draw) does not depend on the values of the configuration.
    """
    if isinstance(value, torch.Tensor):
        value = value.to(device, torch.float32).flatten()
        if value.numel() == 1:
            return value.expand(n).clone()
        if value.numel() != n:
            raise ValueError(f"expected {n} per-sample values, got {value.numel()}")
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError(f"a range is (low, high) with low <= high, got {value!r}")
        low, high = float(value[0]), float(value[1])
        return low + (high - low) * rand((n,), generator, device)
    return torch.full((n,), float(value), device=device)


def chance(
    n: int, p: float, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """n booleans, each True with probability ``p`` (always draws n numbers)."""
    if not 0 <= p <= 1:
        raise ValueError(f"a probability lies in [0, 1], got {p}")
    return rand((n,), generator, device) < p


def choice(
    n: int,
    probs: Sequence[float],
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """n indices into ``probs`` (int64), index k drawn with probability probs[k] / sum(probs)."""
    weights = torch.tensor([float(p) for p in probs])
    if weights.ndim != 1 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"probabilities must be non-negative and not all zero, got {probs!r}")
    edges = torch.cumsum(weights / weights.sum(), 0)[:-1]
    return torch.bucketize(rand((n,), generator, "cpu"), edges, right=True).to(device)


def check_batch(images: torch.Tensor, name: str = "images") -> None:
    """Raise unless ``images`` is a float tensor (N, C, H, W)."""
    if images.ndim != 4:
        raise ValueError(f"{name}: expected (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [0, 1], got {images.dtype}")


def smooth_field(
    shape: Sequence[int],
    cell: float,
    generator: torch.Generator | None,
    device: torch.device | str,
) -> torch.Tensor:
    """Smooth random field (N, C, H, W), roughly N(0, 1), varying over about ``cell`` pixels.

    Normal noise on a coarse grid (one value per ``cell`` pixels), upsampled bicubically: the
    stuff of stains, uneven fading, paper texture and wrinkle warps.
    """
    n, c, h, w = shape
    gh, gw = max(2, round(h / cell) + 2), max(2, round(w / cell) + 2)
    coarse = randn((n, c, gh, gw), generator, device)
    field = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return field
