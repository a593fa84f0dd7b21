"""What the demo accepts: samples, uploads (refused by name when too big, too small or not an
image), drawn and random inpainting masks.

Taught at the end of chapter 8 (the interactive demo). Images are float tensors (3, H, W) in
[0, 1]; grey uploads are repeated to RGB; masks are (1, H, W), 1 = missing. Refusals are
:class:`DemoError` s, which the page shows as one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restorelab import degrade
from restorelab.data.embedded import load_photo
from restorelab.io import open_image, read_image, to_tensor

MAX_UPLOAD_MB = 20  # larger files are refused before they are decoded
MAX_SIDE = 2048  # longest image side the demo restores (a CPU takes seconds at this size)
MIN_SIDE = 32
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "coins", "page")


class DemoError(ValueError):
    """A problem the page shows as a message (a bad upload, a checkpoint of another task)."""


def sample_image(name: str) -> torch.Tensor:
    """An embedded sample (3, H, W): a photo of scikit-image, or ``"page"``, a synthetic page."""
    if name not in SAMPLES:
        raise DemoError(f"unknown sample {name!r}; samples: {', '.join(SAMPLES)}")
    if name == "page":
        from restorelab.data.pages import render_page

        return to_tensor(render_page((512, 384), np.random.default_rng([0, 0, 0])))
    return as_rgb(to_tensor(load_photo(name)))


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """(1 or 3, H, W) -> (3, H, W)."""
    return image.expand(3, -1, -1).clone() if image.shape[0] == 1 else image


def read_upload(path: str | Path) -> torch.Tensor:
    """An uploaded image file -> (3, H, W), or :class:`DemoError` saying why it is refused.

    Refused: files over :data:`MAX_UPLOAD_MB`, files PIL cannot identify, images whose longer
    side exceeds :data:`MAX_SIDE` (checked from the header, before decoding) or whose shorter
    side is under :data:`MIN_SIDE`. Transparency is composited over white.
    """
    path = Path(path)
    name = path.name
    megabytes = path.stat().st_size / 2**20
    if megabytes > MAX_UPLOAD_MB:
        raise DemoError(
            f"{name}: {megabytes:.2f} MB; the demo takes files up to {MAX_UPLOAD_MB} MB"
        )
    try:
        with open_image(path) as image:
            width, height = image.size
    except Exception as error:  # PIL's errors differ by format: all mean "not an image"
        raise DemoError(
            f"{name}: not an image file PIL can read ({type(error).__name__})"
        ) from None
    check_size(width, height, name)
    try:
        return as_rgb(read_image(path, mode="any", alpha="white"))
    except ValueError as error:
        raise DemoError(str(error).replace(str(path), name)) from None


def check_size(width: int, height: int, name: str = "the image") -> None:
    """Refuse images larger than :data:`MAX_SIDE` or smaller than :data:`MIN_SIDE` pixels."""
    if max(width, height) > MAX_SIDE:
        raise DemoError(f"{name}: {width}x{height} pixels; the demo takes images up to "
                        f"{MAX_SIDE} pixels on the longer side (crop or shrink it first)")  # fmt: skip
    if min(width, height) < MIN_SIDE:
        raise DemoError(f"{name}: {width}x{height} pixels; the demo needs at least {MIN_SIDE} "
                        "pixels on each side")  # fmt: skip


def mask_from_layers(layers: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Strokes drawn on the editor's layers (RGBA arrays) -> a mask (1, H, W), 1 = missing.

    Every pixel a layer covers (alpha > 0) is missing; layers of another size (the editor's
    canvas) are resized to ``size`` = (H, W) with nearest neighbours.
    """
    mask = torch.zeros(1, 1, *size)
    for layer in layers:
        layer = np.asarray(layer)
        drawn = layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else layer.any(-1)
        drawn = torch.from_numpy(np.ascontiguousarray(drawn)).float()[None, None]
        mask = torch.maximum(mask, F.interpolate(drawn, size=size, mode="nearest"))
    if not mask.any():
        raise DemoError("no mask drawn: paint the holes on the image, or choose a random mask")
    return mask[0]


def random_mask(size: tuple[int, int], seed: int) -> torch.Tensor:
    """A random inpainting mask (1, H, W), strokes, boxes or holes (chapter 8's damage)."""
    return degrade.random_masks(1, size, degrade.make_generator(seed))[0]


def input_image(sample: str | None, upload: str | None) -> torch.Tensor:
    """The image a request works on: the upload if any, else the sample."""
    if upload:
        return read_upload(upload)
    if not sample:
        raise DemoError("pick a sample or upload an image")
    return sample_image(sample)
