"""Restormer: Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image
Restoration" (CVPR 2022).

Taught in chapter 6 (transposed attention, gated feed-forward). A four-level U-Net of
Transformer blocks, each ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``:

- :class:`MDTA` (multi-Dconv head transposed attention): queries, keys and values come from a
  1x1 conv and a 3x3 depthwise conv; attention is computed *across channels* (a C/h x C/h map per
  head, with L2-normalised q, k and a learned temperature) instead of across pixels, so its cost
  grows linearly with the number of pixels and full-resolution images fit in memory.
- :class:`GDFN` (gated-Dconv feed-forward network): 1x1 conv to two branches, 3x3 depthwise
  conv, ``GELU(a) * b``, 1x1 conv back.

Levels have ``dim * (1, 2, 4, 8)`` channels; :class:`Downsample` / :class:`Upsample` are a 3x3
conv with pixel-unshuffle / pixel-shuffle. The decoder's level 1 keeps the concatenated
``2 * dim`` channels, followed by refinement blocks and a 3x3 conv; the output is added to the
input (global residual).

Configurations (names follow the official ``restormer_arch.py`` so its checkpoints load with
:func:`restorelab.models.load_official`):

- ``"paper"``: dim 48, blocks [4, 6, 6, 8], 4 refinement blocks, heads [1, 2, 4, 8], FFN
  expansion 2.66, bias-free convolutions, LayerNorm with bias (the official default and the
  paper's 26.13M; the deblurring and deraining checkpoints), RGB: 26,126,644 parameters.
- ``"denoising"``: the same with the bias-free LayerNorm (``layer_norm_bias=False``) of the
  official Gaussian and real (SIDD) denoising checkpoints: 26,111,668 parameters.
- ``"competition"``: dim 24, otherwise as ``"paper"``: 6,676,132 parameters (under the 10M limit).

``bias=True`` gives the attention, feed-forward, channel-reduction and output convolutions a bias,
as the official ``bias`` argument does; the patch embedding never has one (as in the official
``OverlapPatchEmbed``), so official checkpoints trained with ``bias=True`` load too.

Shapes: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, H, W); any H, W (padded by
reflection to a multiple of 8, then cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.layers import LayerNorm2d
from restorelab.models.padding import crop_to, pad_to_multiple

PRESETS = {
    "paper": {"in_channels": 3, "out_channels": 3, "dim": 48},
    "denoising": {"in_channels": 3, "out_channels": 3, "dim": 48, "layer_norm_bias": False},
    "competition": {"in_channels": 3, "out_channels": 3, "dim": 24},
}


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: channel-to-channel attention, (N, C, H, W) kept."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # (N, heads * C/heads, H, W) -> (N, heads, C/heads, H*W): each channel is one token
        q, k, v = (t.reshape(n, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        # L2 norms over H*W values taken in float32 (a no-op in fp32): under bf16 autocast this
        # is more exact, and torch 2.14's compiled CPU kernel for the bf16 one returns NaN
        q, k = F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (N, heads, C/heads, C/heads)
        out = attn.softmax(dim=-1) @ v
        return self.project_out(out.reshape(n, c, h, w))


class SpatialAttention(MDTA):
    """The baseline MDTA is measured against in chapter 6: the same projections, but attention
    across *pixels* (an (H*W) x (H*W) map per head, scaled by 1/sqrt(C/heads)), as in ViT or
    SwinIR's windows. Its memory grows with (H*W)^2. (N, C, H, W) kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # (N, heads, H*W, C/heads): each pixel is one token
        q, k, v = (t.reshape(n, self.num_heads, c // self.num_heads, h * w).transpose(-2, -1)
                   for t in (q, k, v))  # fmt: skip
        attn = (q @ k.transpose(-2, -1)) * (c // self.num_heads) ** -0.5  # (N, heads, HW, HW)
        out = attn.softmax(dim=-1) @ v
        return self.project_out(out.transpose(-2, -1).reshape(n, c, h, w))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network: ``project_out(GELU(a) * b)``, (N, C, H, W) kept.

    ``gated=False`` / ``depthwise=False``: chapter 6's ablations, one branch ``GELU(a)`` without
    the gate / no 3x3 depthwise convolution (the paper's network has both).
    """

    def __init__(
        self,
        dim: int,
        expansion: float = 2.66,
        bias: bool = False,
        gated: bool = True,
        depthwise: bool = True,
    ) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        branches = 2 if gated else 1
        self.gated = gated
        self.project_in = nn.Conv2d(dim, hidden * branches, 1, bias=bias)
        self.dwconv = (
            nn.Conv2d(hidden * branches, hidden * branches, 3, padding=1, groups=hidden * branches,
                      bias=bias)
            if depthwise
            else nn.Identity()
        )  # fmt: skip
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.gated:
            return self.project_out(F.gelu(self.dwconv(self.project_in(x))))
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: ``x + MDTA(LN(x))``, then ``x + GDFN(LN(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion: float = 2.66,
        bias: bool = False,
        layer_norm_bias: bool = False,
        ffn_gated: bool = True,
        ffn_depthwise: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, bias=layer_norm_bias, eps=1e-5)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = LayerNorm2d(dim, bias=layer_norm_bias, eps=1e-5)
        self.ffn = GDFN(dim, ffn_expansion, bias, ffn_gated, ffn_depthwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class Downsample(nn.Sequential):
    """3x3 conv to C/2 channels, pixel-unshuffle: (N, C, H, W) -> (N, 2C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )


class Upsample(nn.Sequential):
    """3x3 conv to 2C channels, pixel-shuffle: (N, C, H, W) -> (N, C/2, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2)
        )


class Restormer(nn.Module):
    """Four-level Transformer U-Net with a refinement stage and a global residual."""

    upscale = 1

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: tuple[int, int, int, int] = (1, 2, 4, 8),
        ffn_expansion: float = 2.66,
        bias: bool = False,
        layer_norm_bias: bool = True,
        ffn_gated: bool = True,
        ffn_depthwise: bool = True,
    ) -> None:
        super().__init__()
        ffn = (ffn_gated, ffn_depthwise)  # False: chapter 6's GDFN ablations

        def stage(channels: int, level_heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(
                *[
                    TransformerBlock(
                        channels, level_heads, ffn_expansion, bias, layer_norm_bias, *ffn
                    )
                    for _ in range(count)
                ]
            )

        self.residual = in_channels == out_channels
        # the official OverlapPatchEmbed never has a bias, whatever ``bias`` says
        self.patch_embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.encoder_level1 = stage(dim, heads[0], num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(dim * 2, heads[1], num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(dim * 4, heads[2], num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(dim * 8, heads[3], num_blocks[3])

        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, 1, bias=bias)
        self.decoder_level3 = stage(dim * 4, heads[2], num_blocks[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = stage(dim * 2, heads[1], num_blocks[1])
        self.up2_1 = Upsample(dim * 2)  # level 1 keeps the 2*dim concatenated channels
        self.decoder_level1 = stage(dim * 2, heads[0], num_blocks[0])
        self.refinement = stage(dim * 2, heads[0], num_refinement_blocks)
        self.output = nn.Conv2d(dim * 2, out_channels, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 8)
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1))
        dec3 = self.decoder_level3(dec3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        out = self.output(self.refinement(dec1))
        if self.residual:
            out = out + x
        return crop_to(out, size)
