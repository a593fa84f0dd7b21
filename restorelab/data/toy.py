"""Points on a ring of Gaussians: the 2-D toy data of chapter 7's GAN failure modes.

Taught in chapter 7. ``modes`` Gaussian blobs of standard deviation ``std`` sit evenly on a circle
of radius ``radius`` (Metz et al. 2017 showed mode collapse on this set). A GAN that covers every
blob has learnt the distribution; one that keeps jumping between one or two blobs has collapsed.
:func:`ring_coverage` counts the blobs a set of generated points covers, and :func:`noise_pair`
makes the (noise, real points) pairs that :class:`restorelab.train.GANTrainer` trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils.data import Dataset


class GaussianRing(Dataset):
    """``length`` points (2,) drawn once from the ring with ``seed``; item ``i`` is point ``i``."""

    def __init__(
        self,
        modes: int = 8,
        radius: float = 2.0,
        std: float = 0.05,
        length: int = 100_000,
        seed: int = 0,
    ) -> None:
        if modes < 1 or radius <= 0 or std <= 0 or length < 1:
            raise ValueError("GaussianRing needs modes >= 1, radius > 0, std > 0, length >= 1")
        self.modes, self.radius, self.std = modes, radius, std
        generator = torch.Generator().manual_seed(seed)
        which = torch.randint(modes, (length,), generator=generator)
        self.points = self.centres()[which] + std * torch.randn(length, 2, generator=generator)

    def centres(self) -> torch.Tensor:
        """The blobs' centres, (modes, 2)."""
        angles = torch.arange(self.modes) * (2 * math.pi / self.modes)
        return self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.points[index]


def ring_coverage(points: torch.Tensor, ring: GaussianRing, min_share: float = 0.01) -> dict:
    """How well generated ``points`` (N, 2) cover ``ring``.

    ``modes``: blobs holding at least ``min_share`` of the points within 3 ``std`` of their
    centre; ``on_ring``: the share of points within 3 ``std`` of some centre.
    """
    distances = torch.cdist(points.float().cpu(), ring.centres())
    nearest, which = distances.min(dim=1)
    close = nearest < 3 * ring.std
    counts = torch.bincount(which[close], minlength=ring.modes)
    return {
        "modes": float((counts >= min_share * len(points)).sum()),
        "on_ring": float(close.float().mean()),
    }


def noise_pair(
    noise_dim: int = 2,
) -> Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """A ``make_pair`` for GANs from noise: (batch of real points, generator) -> (Gaussian noise
    (N, noise_dim) drawn with the step's generator, the real points)."""

    def make_pair(batch: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        noise = torch.randn(batch.shape[0], noise_dim, generator=generator, device=batch.device)
        return noise, batch

    return make_pair
