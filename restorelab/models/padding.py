"""Pad an image to a multiple of a size, and crop the result back; replicate padding that compiles.

Shared by every model of the course that downsamples (KBNet ch5, Restormer ch6, the U-Net
inpainter ch8, RRDBNet when it pixel-unshuffles): a U-Net with ``L`` halvings needs height and
width divisible by ``2**L``. Instead of refusing other sizes, the model pads the bottom and right
edges, by reflection by default (the padded pixels look like the image, so the borders are not
darkened as with zero padding) or with zeros (what the official KBNet code does, so its released
checkpoints give its outputs), runs, and crops the output back to ``scale`` times the input size.

Shapes: (N, C, H, W) -> (N, C, H + ph, W + pw) with ph, pw in [0, multiple).

:func:`replicate_pad` and :class:`EdgePaddedConv2d` give the edge-replicating convolutions of
SRCNN (ch1) and AR-CNN (ch2) a backward that ``torch.compile`` can build: the backward of
``F.pad(mode="replicate")`` after a convolution fails under Inductor's layout optimisation
(torch 2.11 to 2.14, "expected size ... stride" in ``assert_size_stride``), and turning that
optimisation off made compiled bf16 KBNet return NaN on a CPU. (Gathering the edges with
clamped indices instead corrupted memory in torch 2.11's compiled CPU backward.) Outside a
compiled graph they are ``F.pad`` itself: eager training is as fast, and bit for bit as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
        if mode == "replicate":
            x = replicate_pad(x, (0, pw, 0, ph))
        else:
            x = F.pad(x, (0, pw, 0, ph), mode="constant" if mode == "zeros" else mode)
    return x, (h, w)


def crop_to(y: torch.Tensor, size: tuple[int, int], scale: int = 1) -> torch.Tensor:
    """Crop ``y`` to ``scale`` times ``size`` (the size :func:`pad_to_multiple` returned)."""
    h, w = size
    return y[..., : h * scale, : w * scale]


def replicate_pad(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """``F.pad(x, padding, mode="replicate")`` for (N, C, H, W); inside ``torch.compile``, the
    same values by :func:`concatenated_edges`. ``padding`` = (left, right, top, bottom)."""
    if torch.compiler.is_compiling():
        return concatenated_edges(x, padding)
    return F.pad(x, padding, mode="replicate")


def concatenated_edges(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Replicate padding built from the edge rows and columns, expanded and concatenated: the
    values of ``F.pad``'s, and a backward of sums and slices that Inductor compiles on every
    device. ``padding`` = (left, right, top, bottom), each >= 0."""
    left, right, top, bottom = padding
    x = torch.cat([x[..., :1].expand(*x.shape[:-1], left), x,
                   x[..., -1:].expand(*x.shape[:-1], right)], -1)  # fmt: skip
    edge = lambda row, n: row.expand(*x.shape[:-2], n, x.shape[-1])  # noqa: E731
    return torch.cat([edge(x[..., :1, :], top), x, edge(x[..., -1:, :], bottom)], -2)


class EdgePaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``padding_mode="replicate"`` with explicit padding pads with
    :func:`replicate_pad`; the other modes, ``padding="same"``, the parameters and the state
    dict are ``nn.Conv2d``'s. Only public attributes are read."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W'), the values ``nn.Conv2d`` computes."""
        if self.padding_mode != "replicate" or isinstance(self.padding, str):
            return super().forward(input)
        rows, columns = self.padding
        padded = replicate_pad(input, (columns, columns, rows, rows))
        return F.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
