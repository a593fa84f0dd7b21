"""Data: embedded photos, training patches, folders of images, benchmark sets.

Taught from chapter 1 on (Arrow sets and the images of chapter 8: ``arrow``, ``art``). See
:mod:`restorelab.data.datasets` for why every training dataset is
deterministic per index.
"""

from restorelab.data.arrow import ArrowImages, column_values, write_arrow_images
from restorelab.data.art import Labelled, centre_square, embedded_crops, stream_wikiart
from restorelab.data.benchmarks import (
    BENCHMARKS,
    benchmark_dir,
    benchmark_images,
    matlab_lr_images,
    training_images,
)
from restorelab.data.datasets import (
    ImageFolder,
    RandomPatches,
    SRPairs,
    check_size,
    load_folder,
    random_flip_rotate,
    sample_rng,
)
from restorelab.data.device_patches import DevicePatches
from restorelab.data.embedded import (
    LEAKS_INTO_BENCHMARKS,
    TRAIN_PHOTOS,
    VAL_PHOTOS,
    embedded_photos,
    load_photo,
)
from restorelab.data.pages import SyntheticScans, render_page
from restorelab.data.paired import (
    DegradedFolder,
    PairedFolder,
    PairedPatches,
    course2023,
    descan18k,
    download_descan18k,
)
from restorelab.data.prefetch import Prefetcher
from restorelab.data.toy import GaussianRing, noise_pair, ring_coverage

__all__ = [
    "ArrowImages",
    "Labelled",
    "centre_square",
    "column_values",
    "embedded_crops",
    "stream_wikiart",
    "write_arrow_images",
    "BENCHMARKS",
    "DegradedFolder",
    "GaussianRing",
    "ImageFolder",
    "LEAKS_INTO_BENCHMARKS",
    "PairedFolder",
    "DevicePatches",
    "PairedPatches",
    "Prefetcher",
    "RandomPatches",
    "SRPairs",
    "SyntheticScans",
    "TRAIN_PHOTOS",
    "VAL_PHOTOS",
    "benchmark_dir",
    "benchmark_images",
    "matlab_lr_images",
    "noise_pair",
    "ring_coverage",
    "check_size",
    "training_images",
    "course2023",
    "descan18k",
    "download_descan18k",
    "embedded_photos",
    "load_folder",
    "load_photo",
    "random_flip_rotate",
    "render_page",
    "sample_rng",
]
