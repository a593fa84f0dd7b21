"""Pad an image to a multiple of a size, and crop the result back.

Shared by every model of the course that downsamples (KBNet ch5, Restormer ch6, the U-Net
inpainter ch8, RRDBNet when it pixel-unshuffles): a U-Net with ``L`` halvings needs height and
width divisible by ``2**L``. Instead of refusing other sizes, the model pads the bottom and right
edges, by reflection by default (the padded pixels look like the image, so the borders are not
darkened as with zero padding) or with zeros (what the official KBNet code does, so its released
checkpoints give its outputs), runs, and crops the output back to ``scale`` times the input size.

Shapes: (N, C, H, W) -> (N, C, H + ph, W + pw) with ph, pw in [0, multiple).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD_MODES = ("reflect", "zeros")


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` (N, C, H, W) so H and W are multiples of ``multiple``.

    ``mode``: ``"reflect"`` or ``"zeros"``. Returns the padded tensor and the original ``(H, W)``
    for :func:`crop_to`. Reflection needs the padding to be smaller than the image; tiny inputs
    fall back to replicating the edge.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"padding must be one of {PAD_MODES}, got {mode!r}")
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode="constant" if mode == "zeros" else mode)
    return x, (h, w)


def crop_to(y: torch.Tensor, size: tuple[int, int], scale: int = 1) -> torch.Tensor:
    """Crop ``y`` to ``scale`` times ``size`` (the size :func:`pad_to_multiple` returned)."""
    h, w = size
    return y[..., : h * scale, : w * scale]
