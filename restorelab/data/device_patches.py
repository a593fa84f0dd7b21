"""Training patches cut for a whole batch at once, on the device that trains.

Taught in chapter 5 (where the data pipeline, not the GPU, bounded the speed of the references).
:class:`~restorelab.data.RandomPatches` and :class:`~restorelab.data.PairedPatches` cut one
patch per index in Python on the CPU: for small networks that per-sample work, not the GPU,
sets the pace. :class:`DevicePatches` holds every training image once, as 8-bit pixels in one
flat tensor on the device, and cuts a step's whole batch with a single gather: the crop, the
flips and the 90-degree turns become index arithmetic, drawn from one generator seeded by
(seed, step). So the batch of step ``s`` depends only on the seed and ``s`` (exact resume, as
with the loader) and no Python runs per sample. The same code runs on the CPU.

``TrainConfig(sampler="device")`` makes the Trainer use it; both datasets build theirs with
``on_device(device)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from restorelab.io import to_levels

# a stream of random numbers apart from the one that degrades the batch (make_pair)
SAMPLER_STREAM = 1
# images take at most this share of the free GPU memory; above it they stay in pinned memory
GPU_SHARE = 0.5


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """The generator seed of ``step`` in stream ``stream`` (0: the degradation of the batch)."""
    return seed * 1_000_003 + step + stream * 2**48


def exact_uint8(image: torch.Tensor) -> torch.Tensor | None:
    """``image`` as uint8 when that loses nothing (uint8 already, or float in [0, 1] holding
    8-bit levels as every decoded file does); None otherwise."""
    if image.dtype == torch.uint8:
        return image
    levels = to_levels(image)
    return levels if torch.equal(levels.float() / 255, image.float()) else None


class DevicePatches:
    """Random ``patch_size`` squares of ``images``, a whole batch per call, on ``device``.

    ``images``: tensors (C, H, W) with one C, uint8 or float in [0, 1]; each side at least
    ``patch_size``. They are stored once, flat, as uint8 when that is exact (float32
    otherwise), on the device, or in pinned CPU memory when they would take more than half of
    the free GPU memory (the batch is then cut on the CPU and copied). ``weights``: the chance
    of each image (default: equal). ``split``: channel counts to cut each patch into, e.g.
    ``(3, 3)`` for (scan, clean) pairs stored side by side in 6 channels.

    ``labels``: one int per image (chapter 8's classes); each batch then ends with the (size,)
    long labels of its images.

    ``batch(step, size)``: float32 (size, C, P, P) in [0, 1] (a tuple of them with ``split``,
    and a tuple ``(..., labels)`` with ``labels``).
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        patch_size: int,
        seed: int = 0,
        augment: bool = True,
        weights: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        split: tuple[int, ...] = (),
        labels: Sequence[int] | torch.Tensor | None = None,
    ) -> None:
        if not images:
            raise ValueError("DevicePatches needs at least one image")
        channels = {int(image.shape[0]) for image in images}
        if len(channels) > 1:
            raise ValueError(f"all images need the same number of channels, got {sorted(channels)}")
        self.channels = channels.pop()
        if split and sum(split) != self.channels:
            raise ValueError(f"split {split} does not add up to the {self.channels} channels")
        for i, image in enumerate(images):
            if min(image.shape[-2:]) < patch_size:
                h, w = image.shape[-2:]
                raise ValueError(
                    f"image {i}: {w}x{h} pixels, smaller than the {patch_size}px patch"
                )
        exact = [exact_uint8(image) for image in images]
        stored = exact if all(e is not None for e in exact) else [_unit(i) for i in images]
        self.scale = 255.0 if stored[0].dtype == torch.uint8 else 1.0
        flat = torch.cat([image.reshape(-1) for image in stored])
        self.device = torch.device(device)
        self.store = _placement(flat, self.device)
        self.flat = flat.to(self.store)
        if self.store.type == "cpu" and self.device.type == "cuda":
            self.flat = self.flat.pin_memory()
        sizes = torch.tensor([image.shape[-2:] for image in stored], dtype=torch.long)
        areas = sizes[:, 0] * sizes[:, 1]
        starts = torch.cumsum(areas * self.channels, 0) - areas * self.channels
        self.heights, self.widths = sizes[:, 0].to(self.store), sizes[:, 1].to(self.store)
        self.areas, self.starts = areas.to(self.store), starts.to(self.store)
        chances = torch.ones(len(images)) if weights is None else torch.as_tensor(weights).float()
        if chances.shape != (len(images),) or (chances < 0).any() or chances.sum() <= 0:
            raise ValueError("weights must be one non-negative number per image, not all zero")
        self.weights = (chances / chances.sum()).to(self.store)
        self.patch_size, self.seed, self.augment, self.split = patch_size, seed, augment, split
        self.labels = None
        if labels is not None:
            self.labels = torch.as_tensor(labels, dtype=torch.long).to(self.store)
            if self.labels.shape != (len(images),):
                raise ValueError(f"labels: one per image ({len(images)}), got shape "
                                 f"{tuple(self.labels.shape)}")  # fmt: skip

    def draws(self, step: int, size: int) -> dict[str, torch.Tensor]:
        """What the batch of ``step`` is cut from: per sample (``size``,) long tensors
        ``image``, ``top``, ``left`` and ``turn`` (0-7: bit 0 flips rows, bit 1 flips columns,
        bit 2 transposes, applied in that order)."""
        generator = torch.Generator(self.store).manual_seed(
            step_seed(self.seed, step, SAMPLER_STREAM)
        )
        image = torch.multinomial(self.weights, size, replacement=True, generator=generator)
        corner = []
        for side in (self.heights[image], self.widths[image]):
            room = side - self.patch_size  # the largest valid corner
            u = torch.rand(size, generator=generator, device=self.store)
            corner.append(torch.minimum((u * (room + 1)).long(), room))
        turn = torch.randint(8, (size,), generator=generator, device=self.store)
        if not self.augment:
            turn = torch.zeros_like(turn)
        return {"image": image, "top": corner[0], "left": corner[1], "turn": turn}

    def cut(self, draws: dict[str, torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The patches ``draws`` describe, with one gather (see :meth:`batch`).

        The index of output pixel (r, c) is a sum of a term of r and a term of c: the flips
        act on one of them each, and a transpose swaps the two. So every pixel's index is one
        broadcast sum, and the gather is the only pass over the batch."""
        p, n = self.patch_size, len(draws["image"])
        grid = torch.arange(p, device=self.store)
        turn, image = draws["turn"], draws["image"]
        rows = torch.where((turn & 1).view(n, 1) > 0, p - 1 - grid, grid) + draws["top"].view(n, 1)
        rows = rows * self.widths[image].view(n, 1)  # the offset of each source row
        cols = torch.where((turn & 2).view(n, 1) > 0, p - 1 - grid, grid) + draws["left"].view(n, 1)
        swap = (turn & 4).view(n, 1) > 0  # transposed: output row r reads source column r
        across, down = torch.where(swap, cols, rows), torch.where(swap, rows, cols)
        channel = torch.arange(self.channels, device=self.store).view(1, -1)
        plane = self.starts[image].view(n, 1) + channel * self.areas[image].view(n, 1)
        index = plane.view(n, -1, 1, 1) + across.view(n, 1, p, 1) + down.view(n, 1, 1, p)
        patches = torch.take(self.flat, index)
        patches = patches.to(self.device, non_blocking=True).float().div_(self.scale)
        return patches.split(list(self.split), dim=1) if self.split else patches

    def batch(self, step: int, size: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The ``size`` patches of ``step``: the same for the same (seed, step, device)."""
        draws = self.draws(step, size)
        patches = self.cut(draws)
        if self.labels is None:
            return patches
        labels = self.labels[draws["image"]].to(self.device, non_blocking=True)
        return (*patches, labels) if self.split else (patches, labels)


def _unit(image: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1]: uint8 levels divided by 255, float images as they are."""
    return image.float() / 255 if image.dtype == torch.uint8 else image.float()


def _placement(flat: torch.Tensor, device: torch.device) -> torch.device:
    """Where the images are kept: ``device``, unless they would crowd a GPU's free memory."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    fits = flat.numel() * flat.element_size() <= GPU_SHARE * free
    return device if fits else torch.device("cpu")


def sampler_rates(
    dataset, device: str | torch.device, batch_size: int = 16, batches: int = 20
) -> dict[str, float]:
    """Patches per second that reach ``device`` from ``dataset`` (a RandomPatches or
    PairedPatches), through a DataLoader (one patch per index, then copied) and through
    ``dataset.on_device(device)`` (chapter 5). Each path is timed over ``batches`` batches
    after one warm-up batch; the device's queue is drained before each clock reading."""
    from torch.utils.data import DataLoader

    device = torch.device(device)

    def drain() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def moved(batch):
        return (
            [t.to(device) for t in batch] if isinstance(batch, (list, tuple)) else batch.to(device)
        )

    loader = iter(DataLoader(dataset, batch_size=batch_size, sampler=range(len(dataset))))
    source = dataset.on_device(device)
    rates = {}
    for name, next_batch in (
        ("loader", lambda step: moved(next(loader))),
        ("device", lambda step: source.batch(step, batch_size)),
    ):
        next_batch(0)
        drain()
        started = time.perf_counter()
        for step in range(1, batches + 1):
            next_batch(step)
        drain()
        rates[name] = batches * batch_size / (time.perf_counter() - started)
    return rates
