"""Data: embedded photos, training patches, folders of images, benchmark sets.

Taught from chapter 1 on. See :mod:`restorelab.data.datasets` for why every training dataset is
deterministic per index.
"""

from restorelab.data.benchmarks import BENCHMARKS, benchmark_dir, benchmark_images
from restorelab.data.datasets import (
    ImageFolder,
    RandomPatches,
    SRPairs,
    load_folder,
    random_flip_rotate,
    sample_rng,
)
from restorelab.data.embedded import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photos, load_photo

__all__ = [
    "BENCHMARKS",
    "ImageFolder",
    "RandomPatches",
    "SRPairs",
    "TRAIN_PHOTOS",
    "VAL_PHOTOS",
    "benchmark_dir",
    "benchmark_images",
    "embedded_photos",
    "load_folder",
    "load_photo",
    "random_flip_rotate",
    "sample_rng",
]
