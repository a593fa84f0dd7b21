"""Datasets of clean images for training and evaluation.

Taught in chapter 1. Training datasets are *deterministic per index*: sample ``i`` is drawn from a
random generator seeded with ``(seed, i)``, never from global or worker state. So the same seed
gives the same batches with or without DataLoader workers, and a resumed run sees exactly the
batches an uninterrupted run would have seen (see :class:`restorelab.train.Trainer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from restorelab.data.device_patches import DevicePatches
from restorelab.degrade import bicubic_resize
from restorelab.io import list_images, quantize, read_image, to_levels

UNBOUNDED = 2**31 - 1


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` in a dataset seeded with ``seed``."""
    return np.random.default_rng([seed, index])


def random_flip_rotate(patch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One of the 8 flips / 90-degree rotations of a (C, H, W) patch, chosen by ``rng``."""
    if rng.random() < 0.5:
        patch = patch.flip(-1)
    if rng.random() < 0.5:
        patch = patch.flip(-2)
    return patch.rot90(int(rng.integers(4)), dims=(-2, -1))


class RandomPatches(Dataset):
    """Random square patches of a set of images, with random flips and 90-degree rotations.

    ``images``: tensors (C, H, W), float in [0, 1] or uint8 (uint8 keeps large sets small in
    memory). Each image is picked with the same probability (by default; ``weights`` changes
    that), so one large, flat image cannot dominate the batches. Item ``i`` is a float32 patch
    (C, patch_size, patch_size) in [0, 1], the same for the same ``(seed, i)``. ``length`` is
    what ``len()`` reports; any non-negative index is valid.
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        patch_size: int,
        length: int = UNBOUNDED,
        seed: int = 0,
        augment: bool = True,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not images:
            raise ValueError("RandomPatches needs at least one image")
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        for i, image in enumerate(images):
            check_size(image, f"image {i}", patch_size, f"the {patch_size}px patch")
        self.images = list(images)
        self.patch_size, self.length, self.seed, self.augment = patch_size, length, seed, augment
        chances = np.ones(len(self.images)) if weights is None else np.asarray(weights, float)
        if chances.shape != (len(self.images),) or (chances < 0).any() or chances.sum() <= 0:
            raise ValueError("weights must be one non-negative number per image, not all zero")
        self.weights = chances / chances.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = sample_rng(self.seed, index)
        image = self.images[int(rng.choice(len(self.images), p=self.weights))]
        h, w = image.shape[-2:]
        top = int(rng.integers(h - self.patch_size + 1))
        left = int(rng.integers(w - self.patch_size + 1))
        patch = image[:, top : top + self.patch_size, left : left + self.patch_size]
        patch = patch.float() / 255 if patch.dtype == torch.uint8 else patch.float()
        if self.augment:
            patch = random_flip_rotate(patch, rng)
        return patch.contiguous()

    def on_device(self, device: str | torch.device) -> DevicePatches:
        """The same images, patch size, weights and augmentation, cut a batch at a time on
        ``device``: ``TrainConfig(sampler="device")`` (chapter 5)."""
        return DevicePatches(self.images, self.patch_size, self.seed, self.augment,
                             self.weights.tolist(), device)  # fmt: skip


class SRPairs(Dataset):
    """(LR, HR) pairs made on the fly: random HR patches, bicubic-downscaled by ``scale``.

    Item ``i``: ``(lr, hr)`` with hr (C, P, P) and lr (C, P/scale, P/scale), float32 in [0, 1];
    the LR is rounded to 8 bits, like the LR files of the benchmarks. ``patch_size`` must be a
    multiple of ``scale``. (Training loops in this package degrade whole batches on the device
    instead: see :class:`restorelab.tasks.SuperResolution`; this dataset is for inspection and
    for loops written by hand.)
    """

    def __init__(self, images: Sequence[torch.Tensor], scale: int, patch_size: int, **kwargs):
        if patch_size % scale:
            raise ValueError(f"patch_size {patch_size} is not a multiple of scale {scale}")
        self.patches = RandomPatches(images, patch_size, **kwargs)
        self.scale = scale

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.patches[index]
        lr = quantize(bicubic_resize(hr, 1 / self.scale))
        return lr, hr


class ImageFolder(Dataset):
    """The images of a folder, read lazily: item ``i`` is ``(image, file_name)``.

    ``mode``: "rgb", "grey" or "any", ``alpha``: "error", "drop" or "white" (see
    :func:`restorelab.io.read_image`). A corrupt file raises
    :class:`restorelab.io.ImageReadError` naming it.
    """

    def __init__(self, folder: str | Path, mode: str = "rgb", alpha: str = "error") -> None:
        self.files = list_images(folder)
        self.mode, self.alpha = mode, alpha

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        path = self.files[index]
        return read_image(path, self.mode, self.alpha), path.name


def check_size(image: torch.Tensor, source: str, min_size: int, purpose: str = "") -> None:
    """Raise ValueError naming ``source`` when a side of ``image`` (..., H, W) is under
    ``min_size``; ``purpose`` names that size in the message (default "NxN")."""
    h, w = image.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(
            f"{source}: {w}x{h} pixels, smaller than {purpose or f'{min_size}x{min_size}'}"
        )


def load_folder(
    folder: str | Path,
    mode: str = "rgb",
    as_uint8: bool = True,
    alpha: str = "error",
    min_size: int = 0,
    purpose: str = "",
) -> list[torch.Tensor]:
    """All images of a folder in memory: uint8 tensors (C, H, W) (or float in [0, 1]).

    ``min_size``: refuse, naming the file, an image whose side is shorter (``purpose`` names
    that size in the message, e.g. "the 48px patch").
    """
    folder = ImageFolder(folder, mode, alpha)
    images = []
    for i, (image, _) in enumerate(folder):
        check_size(image, str(folder.files[i]), min_size, purpose)
        images.append(to_levels(image) if as_uint8 else image)
    return images
