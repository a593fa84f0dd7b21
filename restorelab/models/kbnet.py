"""KBNet: Zhang et al., "KBNet: Kernel Basis Network for Image Restoration" (arXiv 2023), the
``KBNet_s`` variant.

Taught in chapter 5 (kernel basis attention). A NAFNet-style U-Net (LayerNorm, SimpleGate,
simplified channel attention, no non-linear activation functions) whose blocks add:

- :class:`KBA`, kernel basis attention: the block learns ``nset`` (32) *kernel bases*, each a
  grouped 3x3 convolution (4 channels per group). A light branch predicts, for every pixel, 32
  mixing coefficients; the pixel is filtered with its own kernel, the mix of the bases. Spatially
  adaptive filtering at the cost of one small matrix product per pixel.
- multi-axis feature fusion: the KBA output is multiplied by a parallel grouped-conv branch
  (``conv11``) and by the channel attention (``sca``) before the 1x1 projection.

:class:`KBBlock` = ``x + beta * MFF(KBA(LN(x)))`` then ``x + gamma * FFN(LN(x))``.

Configurations (names follow the official ``kbnet_s_arch.py`` except that the KBA parameters sit
in a ``kba`` sub-module; :func:`restorelab.models.load_official` maps them):

- ``"paper"``: width 64, encoder blocks [2, 2, 4, 8], 12 middle blocks, decoder [2, 2, 2, 2],
  RGB: 141,966,659 parameters (the official default; most of them are the per-block kernel
  bases of the deep levels, which are cheap in compute).
- ``"competition"``: width 32, 3 levels (encoder [2, 2, 4], 4 middle blocks, decoder [2, 2, 2]):
  5,961,891 parameters (under the 10M limit).

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, H, W); any H, W (padded at the
bottom and right to a multiple of ``2**levels``, then cropped back). ``padding="reflect"`` (the
default) or ``"zeros"``: the official code pads with zeros, and
:func:`restorelab.models.load_official` builds the model that way, so a released checkpoint
gives the official outputs on every size; chapter 5 measures which of the two restores a page's
border better.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.layers import LayerNorm2d, SimpleGate
from restorelab.models.padding import PAD_MODES, crop_to, pad_to_multiple

PRESETS = {
    "paper": {"in_channels": 3, "out_channels": 3, "width": 64},
    "competition": {
        "in_channels": 3,
        "out_channels": 3,
        "width": 32,
        "enc_blocks": (2, 2, 4),
        "middle_blocks": 4,
        "dec_blocks": (2, 2, 2),
    },
}


def pixel_kernel_filter(
    x: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor, k: int, groups: int
) -> torch.Tensor:
    """Filter every pixel of ``x`` with its own grouped k x k kernel.

    x: (N, C, H, W); kernels: (N, H*W, C * C/groups * k*k), pixel p's grouped kernel laid out as
    (groups, C/groups out, C/groups in * k*k); bias: (N, H*W, C). Returns (N, C, H, W). The
    neighbourhoods come from ``F.unfold`` (zero padding, channel-major: channel, then row, then
    column of the k x k window).
    """
    n, c, h, wd = x.shape
    cg = c // groups  # channels per group
    kernels = kernels.reshape(n, h * wd, groups, cg, cg * k * k)
    patches = F.unfold(x, k, padding=k // 2)  # (N, C * k*k, HW), channel-major
    patches = patches.reshape(n, groups, cg * k * k, h * wd).permute(0, 3, 1, 2)
    out = (kernels @ patches.unsqueeze(-1)).reshape(n, h * wd, c) + bias
    return out.transpose(1, 2).reshape(n, c, h, wd)


def kernel_basis_filter(
    x: torch.Tensor, att: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int, groups: int
) -> torch.Tensor:
    """Filter every pixel of ``x`` with its own grouped k x k kernel, a mix of ``nset`` bases.

    x: (N, C, H, W); att: (N, nset, H, W) mixing coefficients; w: (1, nset, C * C/groups * k*k)
    the kernel bases; b: (1, nset, C) the bias bases. Returns (N, C, H, W).
    """
    att = att.flatten(2).transpose(1, 2)  # (N, HW, nset)
    return pixel_kernel_filter(x, att @ w, att @ b, k, groups)  # per-pixel kernel: the mix


class KBA(nn.Module):
    """Kernel basis attention: ``uf + ga1 * filter(uf, att)`` with ``uf = dwconv(conv1x1(x))``.

    ``w``/``b``: the ``nset`` kernel and bias bases. ``conv2`` (grouped 3x3, SimpleGate, 1x1)
    plus ``conv211`` (1x1) predict the per-pixel mixing coefficients; ``attgamma`` and ``ga1``
    are learned scales that start at 0.01. (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, c: int, nset: int = 32, k: int = 3, gc: int = 4) -> None:
        super().__init__()
        self.k, self.nset, self.groups = k, nset, c // gc
        self.w = nn.Parameter(torch.zeros(1, nset, c * gc * k * k))
        self.b = nn.Parameter(torch.zeros(1, nset, c))
        # the official initialisation: fan-in of ``w`` taken as nset * its last dimension
        nn.init.kaiming_uniform_(self.w, a=math.sqrt(5))
        bound = 1 / math.sqrt(nset * self.w.shape[-1])
        nn.init.uniform_(self.b, -bound, bound)

        self.conv1 = nn.Conv2d(c, c, 1)
        self.conv21 = nn.Conv2d(c, c, 3, padding=1, groups=c)
        inter = min(c, 32)
        self.conv2 = nn.Sequential(
            nn.Conv2d(c, inter, 3, padding=1, groups=inter),
            SimpleGate(),
            nn.Conv2d(inter // 2, nset, 1),
        )
        self.conv211 = nn.Conv2d(c, nset, 1)
        self.attgamma = nn.Parameter(torch.full((1, nset, 1, 1), 1e-2))
        self.ga1 = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel mixing coefficients of the ``nset`` bases: (N, C, H, W) -> (N, nset, H, W)."""
        return self.conv2(x) * self.attgamma + self.conv211(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.coefficients(x)
        uf = self.conv21(self.conv1(x))
        return kernel_basis_filter(uf, att, self.w, self.b, self.k, self.groups) * self.ga1 + uf


class DynamicConv(nn.Module):
    """The baseline KBA is measured against in chapter 5: a dynamic convolution that *predicts*
    every pixel's grouped k x k kernel (and bias) from the features with a 1x1 convolution,
    instead of mixing a few learned bases. (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, c: int, k: int = 3, gc: int = 4) -> None:
        super().__init__()
        self.k, self.groups = k, c // gc
        self.predict = nn.Conv2d(c, c * gc * k * k + c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        predicted = self.predict(x).flatten(2).transpose(1, 2)  # (N, HW, C*gc*k*k + C)
        kernels, bias = predicted[..., :-c], predicted[..., -c:]
        return pixel_kernel_filter(x, kernels, bias, self.k, self.groups)


class KBBlock(nn.Module):
    """KBNet_s block: KBA with multi-axis feature fusion, then a SimpleGate FFN; (N, C, H, W) kept."""

    def __init__(self, c: int, ffn_expansion: int = 2, lightweight: bool = False) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(c)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        if lightweight:
            self.conv11 = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c))
        else:
            self.conv11 = nn.Sequential(
                nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 5, padding=2, groups=c // 4)
            )
        self.kba = KBA(c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))

        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, ffn_expansion * c, 1)
        self.sg = SimpleGate()
        self.conv5 = nn.Conv2d(ffn_expansion * c // 2, c, 1)
        self.gamma = nn.Parameter(torch.full((1, c, 1, 1), 1e-2))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        fused = self.kba(x) * self.conv11(x) * self.sca(x)  # multi-axis feature fusion
        y = inp + self.conv3(fused) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class KBNet(nn.Module):
    """KBNet_s: U-Net of KBBlocks, strided-conv down, 1x1 conv + pixel-shuffle up, additive skips."""

    upscale = 1

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        enc_blocks: tuple[int, ...] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        dec_blocks: tuple[int, ...] = (2, 2, 2, 2),
        ffn_expansion: int = 2,
        lightweight: bool = False,
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        if padding not in PAD_MODES:
            raise ValueError(f"padding must be one of {PAD_MODES}, got {padding!r}")
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError("KBNet needs as many decoder levels as encoder levels")

        def blocks(c: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[KBBlock(c, ffn_expansion, lightweight) for _ in range(count)])

        self.residual = in_channels == out_channels
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        c = width
        for count in enc_blocks:
            self.encoders.append(blocks(c, count))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle_blks = blocks(c, middle_blocks)
        for count in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(blocks(c, count))
        self.ending = nn.Conv2d(width, out_channels, 3, padding=1)
        self.multiple = 2 ** len(enc_blocks)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.multiple, self.padding)
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            feat = decoder(up(feat) + skip)
        out = self.ending(feat)
        if self.residual:
            out = out + x
        return crop_to(out, size)
