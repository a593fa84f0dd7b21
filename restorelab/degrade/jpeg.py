"""JPEG compression with the real codec, at a quality drawn per sample.

Taught in chapter 2 (ARCNN): JPEG quantises the DCT coefficients of 8x8 blocks, leaving blocking
and ringing that a network learns to remove. A differentiable imitation of JPEG is not the same
degradation, so this runs the codec itself: libjpeg-turbo on CPU, nvJPEG (batched) when the
tensors are on CUDA, both through ``torchvision.io``. Samples that share a quality are encoded in
one call.

Images are float tensors (N, C, H, W) in [0, 1] with C = 1 or 3, any device; they are rounded to
8 bits before encoding and the result is float in [0, 1] (multiples of 1/255) on the same device.
Colour images use the codec's default 4:2:0 chroma subsampling.
"""

from __future__ import annotations

import warnings

import torch

from restorelab.degrade.params import Range, check_batch, uniform


def _codec():
    with warnings.catch_warnings():  # torchvision >= 0.29 announces a move to torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import decode_jpeg, encode_jpeg
    return encode_jpeg, decode_jpeg


# The luminance table of the JPEG standard (ITU T.81, Annex K), row by row: quality 50.
STANDARD_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)


def luma_quantisation_table(quality: int) -> torch.Tensor:
    """The 8x8 luminance quantisation steps libjpeg uses at ``quality`` (1-100): (8, 8) int64.

    The standard table scaled by ``5000 / quality`` below 50 and ``200 - 2 * quality`` above,
    rounded and kept in [1, 255]. Each DCT coefficient of an 8x8 block is divided by its step and
    rounded: large steps (high frequencies, low quality) erase detail and cause blocking and
    ringing (chapter 2).
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = torch.tensor(STANDARD_LUMA_TABLE, dtype=torch.int64)
    return ((table * scale + 50) // 100).clamp(1, 255)


def jpeg_qualities(n: int, quality: Range, generator: torch.Generator | None = None) -> list[int]:
    """n integer qualities in [1, 100]: a number, an inclusive (low, high) range or N values."""
    if isinstance(quality, (tuple, list)):
        quality = (float(quality[0]), float(quality[1]) + 1 - 1e-6)  # inclusive integer range
        values = uniform(n, quality, generator).floor()
    else:
        values = uniform(n, quality, generator).round()
    return [int(q) for q in values.clamp(1, 100).tolist()]


def jpeg(
    images: torch.Tensor, quality: Range, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Compress and decompress each sample at its own JPEG quality (1 = worst, 100 = best)."""
    check_batch(images)
    if images.shape[1] not in (1, 3):
        raise ValueError(f"JPEG takes 1 or 3 channels, got {images.shape[1]}")
    encode_jpeg, decode_jpeg = _codec()
    qualities = jpeg_qualities(images.shape[0], quality, generator)
    # nvjpeg (CUDA) encodes 3-channel images only: grey batches go through the CPU codec
    codec_device = images.device if images.shape[1] == 3 else torch.device("cpu")
    # round half up to 8 bits, in place on one temporary: the conversion costs as much as the codec
    pixels = images.detach().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).to(codec_device)
    out = torch.empty_like(pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for q in sorted(set(qualities)):
            index = [i for i, value in enumerate(qualities) if value == q]
            encoded = encode_jpeg([pixels[i] for i in index], quality=q)
            encoded = [data.cpu() for data in encoded]  # decode_jpeg reads bytes from CPU memory
            for i, image in zip(index, decode_jpeg(encoded, device=codec_device), strict=True):
                out[i] = image
    return out.to(images.device, images.dtype).div_(255)
