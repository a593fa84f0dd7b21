"""Step-indexed sampling: the data of step ``s`` depends only on the seed and ``s``.

Taught in chapter 1 (exact resume) and the appendix (several GPUs: each rank reads its share of
the same global batch); progressive learning (growing patches, shrinking batches) in chapter 6.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from restorelab.data.device_patches import step_seed
from restorelab.data.prefetch import map_tensors


def step_generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator that degrades the batch of ``step`` (the same on every rank)."""
    return torch.Generator(device).manual_seed(step_seed(seed, step))


class StepSampler(Sampler[int]):
    """Dataset indices for the sample positions ``start .. stop`` (``step * batch_size`` each).

    While the dataset is long enough, position p reads index p (random-patch datasets draw a
    fresh sample per index). Beyond that, each epoch is a permutation seeded by (seed, epoch).
    So the indices of any step depend only on the seed and the step: resumable, and identical
    with or without workers.

    With ``world_size`` ranks, each global batch of ``batch_size`` positions is cut into
    ``world_size`` equal, consecutive shards and this sampler yields shard ``rank`` only: the
    ranks together read exactly the batch one process would read.
    """

    def __init__(
        self,
        dataset_length: int,
        start: int,
        stop: int,
        seed: int,
        batch_size: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be a multiple of the {world_size} ranks"
            )
        self.length, self.start, self.stop, self.seed = dataset_length, start, stop, seed
        self.batch_size, self.shard, self.rank = batch_size, batch_size // world_size, rank
        self._perms: dict[int, torch.Tensor] = {}

    def _count_below(self, position: int) -> int:
        full, rest = divmod(position, self.batch_size)
        return full * self.shard + min(max(rest - self.rank * self.shard, 0), self.shard)

    def __len__(self) -> int:
        return self._count_below(self.stop) - self._count_below(self.start)

    def _positions(self) -> Iterator[int]:
        return (
            p
            for p in range(self.start, self.stop)
            if (p % self.batch_size) // self.shard == self.rank
        )

    def _index(self, position: int) -> int:
        if self.stop <= self.length:
            return position
        epoch, offset = divmod(position, self.length)
        if epoch not in self._perms:
            generator = step_generator(self.seed, epoch)
            self._perms = {epoch: torch.randperm(self.length, generator=generator)}
        return int(self._perms[epoch][offset])

    def __iter__(self) -> Iterator[int]:
        return (self._index(p) for p in self._positions())


def progressive_phase(phases: tuple[tuple[int, int, int], ...], step: int) -> tuple[int, int]:
    """(patch size, batch size) of ``step`` (0-based) in a ``TrainConfig.progressive`` schedule."""
    patch, batch = phases[0][1:]
    for start, phase_patch, phase_batch in phases:
        if step >= start:
            patch, batch = phase_patch, phase_batch
    return patch, batch


def progressive_batch(batch, phases: tuple[tuple[int, int, int], ...], step: int):
    """The batch of ``step`` under progressive learning: its first ``batch size`` items, each cut
    to the top-left ``patch x patch`` (a patch of a random patch is a random patch).

    ``batch``: a tensor (N, C, P, P) or a tuple / list of them (e.g. (scan, clean) pairs), the
    loader's batch with N the schedule's largest batch and P at least its largest patch.
    """
    patch, size = progressive_phase(phases, step)

    def cut(t: torch.Tensor) -> torch.Tensor:
        if t.shape[0] < size or min(t.shape[-2:]) < patch:
            raise ValueError(
                f"progressive learning at step {step} needs {size} patches of {patch}x{patch}, "
                f"the loader gave {tuple(t.shape)}: make the dataset's patches at least "
                f"{max(p for _, p, _ in phases)} pixels"
            )
        return t[:size, ..., :patch, :patch]

    return map_tensors(batch, cut)
