"""Image files <-> tensors.

Taught in chapter 0 (the introduction). Tensors are float32 (C, H, W) in [0, 1]; files and numpy
arrays are uint8 (H, W) or (H, W, C). Every read error names the file. Grey and RGBA images are
handled explicitly through ``mode``: nothing is converted silently. An EXIF orientation tag (a
phone photo taken sideways, a scan rotated by its viewer) is applied on read, so every reader of
the package (training, eval, pairs, the demo) sees the image upright, as a viewer shows it.
"""

from __future__ import annotations

import hashlib
import io as stdio
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Pillow's names of the formats IMAGE_SUFFIXES hold (its JPEG opener also opens a camera's
# multi-picture MPO). Pillow picks a decoder by a file's content, not its name: only these are
# ever tried, so a ".png" that holds PostScript is "not an image" rather than a Ghostscript run.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
MODES = ("rgb", "grey", "any")
ALPHA = ("error", "drop", "white")


class ImageReadError(ValueError):
    """An image file could not be read or does not have the channels the caller asked for."""


def _to_mode(array: np.ndarray, mode: str, source: str, alpha: str) -> np.ndarray:
    """Bring a uint8 (H, W) / (H, W, C) array to ``mode``; see :func:`read_image`."""
    if array.ndim == 2:
        array = array[..., None]
    channels = array.shape[2]
    if channels in (2, 4):  # LA or RGBA
        if alpha == "error":
            raise ImageReadError(
                f"{source}: has an alpha channel ({'LA' if channels == 2 else 'RGBA'}); choose "
                "alpha 'drop' (ignore it) or 'white' (composite over white): --alpha on the "
                "command line, alpha= in Python"
            )
        colour, a = array[..., :-1].astype(np.float32), array[..., -1:].astype(np.float32) / 255
        if alpha == "white":
            colour = colour * a + 255 * (1 - a)
        array, channels = np.round(colour).astype(np.uint8), channels - 1
    if channels not in (1, 3):
        raise ImageReadError(f"{source}: {channels} channels; expected 1 (grey) or 3 (RGB)")
    if mode == "rgb" and channels == 1:
        raise ImageReadError(
            f"{source}: greyscale image where RGB is expected; read it with mode='grey', "
            "or mode='any' and convert with restorelab.io.grey_to_rgb"
        )
    if mode == "grey" and channels == 3:
        raise ImageReadError(
            f"{source}: RGB image where greyscale is expected; read it with mode='rgb' and take "
            "the Y channel with restorelab.color.rgb_to_y"
        )
    return array


def read_image(path: str | Path, mode: str = "rgb", alpha: str = "error") -> torch.Tensor:
    """Read an image file as a float32 tensor (C, H, W) in [0, 1].

    ``mode``: ``"rgb"`` (3 channels; a grey file raises), ``"grey"`` (1 channel; an RGB file
    raises) or ``"any"`` (whatever the file holds, 1 or 3 channels).
    ``alpha``: what to do with an alpha channel: ``"error"``, ``"drop"`` or ``"white"``
    (composite over white). An EXIF orientation (2-8) is applied: the tensor is the image
    upright, as a viewer shows it (orientation 6: a stored W x H is read H x W). Every image
    mode PIL opens is converted to 8-bit levels or refused by name: 16-bit, 32-bit integer and
    float (0-1 or 0-255) grey, palette, CMYK, ...
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(
            f"{path}: {'a folder, not an image' if path.is_dir() else 'no such file'}"
        )
    return _decode(path, mode, alpha, str(path))


def decode_image(
    data: bytes, mode: str = "rgb", alpha: str = "error", source: str = "<bytes>"
) -> torch.Tensor:
    """:func:`read_image` for encoded bytes (PNG, JPEG, ... e.g. from an Arrow column).

    ``source`` names the image in error messages.
    """
    return _decode(stdio.BytesIO(data), mode, alpha, source)


def open_image(file: Path | BinaryIO) -> Image.Image:
    """``PIL.Image.open`` limited to :data:`IMAGE_FORMATS` (lazy: the header only)."""
    return Image.open(file, formats=IMAGE_FORMATS)


def _decode(file: Path | BinaryIO, mode: str, alpha: str, source: str) -> torch.Tensor:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if alpha not in ALPHA:
        raise ValueError(f"alpha must be one of {ALPHA}, got {alpha!r}")
    try:
        with open_image(file) as image:
            image.load()
            array = _pixels(_upright(image), source)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as error:  # fmt: skip
        if isinstance(error, ImageReadError):
            raise
        raise ImageReadError(f"{source}: cannot read the image ({error})") from error
    return to_tensor(_to_mode(array, mode, source, alpha))


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned by its EXIF orientation tag (PIL's ``exif_transpose``); as is without one."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _pixels(image: Image.Image, source: str) -> np.ndarray:
    """The pixels of an open PIL image as uint8 (H, W) or (H, W, C): 1, 2, 3 or 4 channels.

    8-bit grey/RGB(A) as they are; bilevel (1) as 0/255; 16-bit grey (I;16) divided by 65535;
    32-bit integer (I) and float (F) grey by the range their values fit (see
    :func:`_range_scale`); palette (P) to RGB(A), or grey when the palette is grey; CMYK,
    YCbCr, LAB, HSV ... to RGB with PIL's conversion. Other modes are refused by name.
    """
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    if image.mode == "1":
        return np.asarray(image.convert("L"))
    if image.mode.startswith("I;16"):
        return _levels(np.asarray(image, dtype=np.float64) / 65535.0)
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        return _levels(values / _range_scale(values, image.mode, source))
    has_alpha = image.mode in ("PA", "RGBa") or "transparency" in image.info
    try:
        array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    except ValueError as error:
        raise ImageReadError(
            f"{source}: image mode {image.mode} is not supported ({error}); save it as 8-bit "
            "RGB or greyscale"
        ) from error
    grey = image.mode in ("P", "PA") and (array[..., 0:1] == array[..., 1:3]).all()
    return array[..., [0, 3] if has_alpha else [0]] if grey else array


def _range_scale(values: np.ndarray, pil_mode: str, source: str) -> float:
    """The white level of a 32-bit grey image: the smallest of 1 (float only), 255 and 65535
    that its largest value fits under (so 0-1 and 0-255 float TIFFs both read right; a 16-bit
    image darker than 256/65536 everywhere would read as 8-bit). Refuses NaN, negative or
    larger values, naming the range found."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not np.isfinite(values).all():
        raise ImageReadError(f"{source}: mode {pil_mode} image with NaN or infinite values")
    whites = (1.0, 255.0, 65535.0)[pil_mode == "I" :]
    for white in whites:
        if low >= 0 and high <= white:
            return white
    expected = " or ".join(f"[0, {white:g}]" for white in whites)
    raise ImageReadError(
        f"{source}: mode {pil_mode} image with values in [{low:g}, {high:g}]; expected {expected}"
    )


def _levels(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 levels (rounded)."""
    return np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 array (H, W) or (H, W, C) -> float32 tensor (C, H, W) in [0, 1]."""
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float().div_(255)


def to_levels(tensor: torch.Tensor, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """Float tensor in [0, 1] (any shape) -> its nearest 8-bit levels in [0, 255] as ``dtype``.

    Values are clamped to [0, 1], scaled by 255 and rounded: the course's quantisation rule
    before any metric, and the one way a decoded image becomes uint8 for training.
    """
    return tensor.detach().clamp(0, 1).mul(255).round().to(dtype)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """Float tensor (C, H, W) or (1, C, H, W) in [0, 1] -> uint8 array (H, W, C), or (H, W) if C=1.

    The pixels are :func:`to_levels` of ``tensor``.
    """
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_uint8 takes one image; got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3:
        raise ValueError(f"expected (C, H, W), got shape {tuple(tensor.shape)}")
    array = to_levels(tensor.float()).cpu().numpy()
    array = array.transpose(1, 2, 0)
    return array[..., 0] if array.shape[2] == 1 else array


def quantize(tensor: torch.Tensor) -> torch.Tensor:
    """Round a float tensor in [0, 1] to the nearest 8-bit level, staying a float tensor."""
    return to_levels(tensor, tensor.dtype).div(255)


def write_image(path: str | Path, tensor: torch.Tensor) -> Path:
    """Write a float tensor (C, H, W) in [0, 1] as an 8-bit image; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(tensor)).save(path)
    return path


def grey_to_rgb(tensor: torch.Tensor) -> torch.Tensor:
    """Repeat a 1-channel image (..., 1, H, W) to 3 channels."""
    if tensor.shape[-3] != 1:
        raise ValueError(f"expected 1 channel, got {tensor.shape[-3]}")
    return tensor.expand(*tensor.shape[:-3], 3, *tensor.shape[-2:]).clone()


def centre_crop(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """The centre ``size`` x ``size`` of an image (..., H, W); ``None`` (or a larger size): as is.

    Chapter 3 validates and runs its classical baselines on centre crops to stay fast on a CPU.
    """
    if size is None:
        return image
    top, left = max(image.shape[-2] - size, 0) // 2, max(image.shape[-1] - size, 0) // 2
    return image[..., top : top + size, left : left + size]


def is_image_name(name: str) -> bool:
    """Whether a file name is one the package reads as an image: an :data:`IMAGE_SUFFIXES`
    suffix, and not a dot-file (macOS writes ``._photo.png`` resource files beside copies)."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (:func:`is_image_name`: dot-files skipped), sorted
    by name; raises if there are none. Training, eval and paired folders list with it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if is_image_name(p.name))
    if not files:
        raise FileNotFoundError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes as 64 hex digits, read in 1 MiB blocks (bounded memory).
    Checks downloads (:mod:`restorelab.pretrained`) and the competition's files."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
