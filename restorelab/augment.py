"""Paired augmentation, batched: crops, flips and 90-degree turns shared by input and target;
colour jitter of the clean image before it is degraded.

Taught in chapter 1 (flips and rotations multiply a small training set by eight) and chapter 9
(colour jitter makes a descanning model see more inks and papers than the training pages hold).
Tensors are (N, C, H, W), any device (crops and flips take any dtype, uint8 too); each sample
draws its own parameters from the ``torch.Generator`` passed in, and every tensor of a pair gets
the *same* geometry, pixel-exact.

Written in plain torch on purpose. kornia.augmentation and torchvision.transforms.v2 draw their
parameters from torch's global random state (no generator argument), so per-(seed, index)
reproducibility across DataLoader workers would be lost; v2 also applies one set of parameters
to a whole batch tensor. Crops and the eight flips/turns are pure indexing (exact, no
interpolation), and the colour jitter is four small per-sample formulas, so plain torch is
short, exact and equally fast on CPU and GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from restorelab.degrade.params import chance, check_batch, rand, uniform


def _check_4d(tensor: torch.Tensor) -> None:
    if tensor.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) tensors, got shape {tuple(tensor.shape)}")


def crop_positions(
    n: int,
    size: tuple[int, int],
    crop: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and left corners (n,) int64 of ``crop`` x ``crop`` windows inside ``size`` = (H, W)."""
    h, w = size
    if crop > min(h, w):
        raise ValueError(f"crop {crop} is larger than the {h}x{w} images")
    top = (rand((n,), generator, device) * (h - crop + 1)).floor().long()
    left = (rand((n,), generator, device) * (w - crop + 1)).floor().long()
    return top, left


def crop_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, crop: int) -> torch.Tensor:
    """Crop sample i of (N, C, H, W) at (top[i], left[i]) to (N, C, crop, crop), by indexing."""
    n = images.shape[0]
    offsets = torch.arange(crop, device=images.device)
    rows = (top.to(images.device)[:, None] + offsets)[:, :, None]  # (N, crop, 1)
    cols = (left.to(images.device)[:, None] + offsets)[:, None, :]  # (N, 1, crop)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # (N, crop, crop, C) first


def random_crops(
    images: Sequence[torch.Tensor],
    n: int,
    crop: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n random crops (n, C, crop, crop) from a list of (C, H, W) images of any sizes.

    Each crop picks its source image uniformly, then its position; crops are views copied once
    into the batch (uint8 sources stay uint8).
    """
    if not images:
        raise ValueError("random_crops needs at least one image")
    small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < crop]
    if small:
        raise ValueError(f"images {small} are smaller than the {crop}px crop")
    source = (rand((n,), generator, "cpu") * len(images)).floor().long().tolist()
    corner = rand((n, 2), generator, "cpu")
    out = []
    for k, i in enumerate(source):
        h, w = images[i].shape[-2:]
        top = int(corner[k, 0] * (h - crop + 1))
        left = int(corner[k, 1] * (w - crop + 1))
        out.append(images[i][..., top : top + crop, left : left + crop])
    return torch.stack(out)


def flip_rotate_params(
    n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(n, 3) booleans: horizontal flip, vertical flip, transpose; together the 8 symmetries."""
    return torch.stack([chance(n, 0.5, generator, device) for _ in range(3)], 1)


def apply_flip_rotate(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Apply per-sample (n, 3) flip / flip / transpose ``params`` to (N, C, H, W), any dtype.

    Only the samples that flip are touched. Transposing needs square images; for non-square
    ones the transpose flag must be False.
    """
    params = params.to(images.device)
    operations = (
        lambda t: t.flip(-1),
        lambda t: t.flip(-2),
        lambda t: t.transpose(-1, -2),
    )
    out = images.clone()
    for k, operation in enumerate(operations):
        chosen = params[:, k].nonzero().squeeze(1)
        if chosen.numel() == 0:
            continue
        if k == 2 and out.shape[-1] != out.shape[-2]:
            raise ValueError(f"cannot transpose non-square images {tuple(out.shape)}")
        out[chosen] = operation(out[chosen])
    return out


def paired_flip_rotate(
    tensors: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """The same random flip / 90-degree turn of every tensor, drawn per sample.

    Square tensors get all 8 symmetries; non-square ones only the 4 flips (their turns would
    change the shape and could not be batched).
    """
    first = tensors[0]
    _check_4d(first)
    params = flip_rotate_params(first.shape[0], generator, first.device)
    if any(t.shape[-1] != t.shape[-2] for t in tensors):
        params[:, 2] = False
    return [apply_flip_rotate(t, params) for t in tensors]


def _luma(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
    return (images * weights[:, None, None]).sum(1, keepdim=True)


# YIQ: luma and two chroma axes; a hue shift is a rotation of the chroma plane
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


def hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) RGB matrices that rotate the hue by ``shift`` (n,) turns (1 = 360 degrees)."""
    angle = 2 * math.pi * shift.float()
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(shift.shape[0], 3, 3, device=shift.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    to_yiq = _RGB_TO_YIQ.to(shift.device)
    return torch.linalg.inv(to_yiq) @ rotation @ to_yiq


def color_jitter(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
    hue: float = 0.03,
) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation and hue jitter of (N, C, H, W) in [0, 1].

    Factors are drawn from [1 - b, 1 + b] (as torchvision's ColorJitter) and applied in that
    order; the hue shifts by up to ``hue`` turns. Grey images (C = 1) get brightness and
    contrast only. Apply it to the clean image *before* degrading it, so the pair stays a pair.
    """
    check_batch(images)
    n, c = images.shape[:2]
    dev = images.device
    b = uniform(n, (1 - brightness, 1 + brightness), generator, dev)[:, None, None, None]
    k = uniform(n, (1 - contrast, 1 + contrast), generator, dev)[:, None, None, None]
    s = uniform(n, (1 - saturation, 1 + saturation), generator, dev)[:, None, None, None]
    shift = uniform(n, (-hue, hue), generator, dev)
    out = (images * b).clamp(0, 1)
    grey = _luma(out) if c == 3 else out
    out = ((out - grey.mean((2, 3), keepdim=True)) * k + grey.mean((2, 3), keepdim=True)).clamp(
        0, 1
    )
    if c == 3:
        grey = _luma(out)
        out = (grey + (out - grey) * s).clamp(0, 1)
        matrices = hue_matrices(shift).to(out.dtype)
        out = torch.einsum("nij,njhw->nihw", matrices, out).clamp(0, 1)
    return out
