"""The real photos shipped inside scikit-image, split into fixed train and validation sets.

Taught in chapter 1. They need no download, so every chapter's QUICK mode and the CLI demo run
anywhere. The split is fixed (not random) so numbers are comparable across runs and machines.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from restorelab.io import to_tensor

# skimage.data loaders that return real photographs without a download (scikit-image >= 0.21).
TRAIN_PHOTOS = (
    "astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
    "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel", "moon",
    "cell", "clock", "text", "camera",
)  # fmt: skip
VAL_PHOTOS = ("chelsea", "rocket", "coins")
SPLITS = {"train": TRAIN_PHOTOS, "val": VAL_PHOTOS}
# Embedded photos too close to a benchmark image, and which one: a model scored on that
# benchmark must not train on them (chapter 3 scores on Set12; the reference checkpoints leave
# them out). skimage's "camera" is, since scikit-image 0.18, a CC0 photo re-creating the classic
# cameraman (Set12's image 01): the same subject and composition, other pixels.
LEAKS_INTO_BENCHMARKS = {"camera": "Set12 image 01 (cameraman): the same scene, re-created"}


def load_photo(name: str) -> np.ndarray:
    """One embedded photo as uint8 (H, W) grey or (H, W, 3) RGB."""
    import skimage.data as sk

    if name.startswith("motorcycle_"):
        left, right, _ = sk.stereo_motorcycle()
        return left if name.endswith("left") else right
    if not hasattr(sk, name):
        raise KeyError(f"unknown embedded photo {name!r}; known: {TRAIN_PHOTOS + VAL_PHOTOS}")
    return getattr(sk, name)()


def embedded_photos(
    split: str = "train", mode: str = "rgb", exclude: Iterable[str] = ()
) -> list[torch.Tensor]:
    """The photos of ``split`` ("train", "val" or "all") as float tensors (C, H, W) in [0, 1].

    ``mode="rgb"`` repeats grey photos to 3 channels (their Y channel is unchanged, so Y-channel
    tasks lose nothing); ``mode="any"`` keeps 1 or 3 channels as stored. ``exclude``: names of
    photos to leave out, e.g. :data:`LEAKS_INTO_BENCHMARKS` before scoring on a benchmark (chapter
    3). The scanned page (``skimage.data.page``) belongs to neither split: chapter 9 uses it.
    """
    names = TRAIN_PHOTOS + VAL_PHOTOS if split == "all" else SPLITS.get(split)
    if names is None:
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    if mode not in ("rgb", "any"):
        raise ValueError(f"mode must be 'rgb' or 'any', got {mode!r}")
    excluded = set(exclude)
    unknown = sorted(excluded - set(TRAIN_PHOTOS + VAL_PHOTOS))
    if unknown:
        raise KeyError(
            f"exclude: unknown embedded photos {unknown}; known: {TRAIN_PHOTOS + VAL_PHOTOS}"
        )
    photos = []
    for name in (name for name in names if name not in excluded):
        image = to_tensor(load_photo(name))
        if mode == "rgb" and image.shape[0] == 1:
            image = image.expand(3, -1, -1).clone()
        photos.append(image)
    return photos
