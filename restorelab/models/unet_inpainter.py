"""Class-conditioned U-Net inpainter (Ronneberger et al., "U-Net", MICCAI 2015, conditioned with
FiLM: Perez et al., AAAI 2018).

Taught in chapter 8 (the clustered inpainter). The images are first clustered: :meth:`encode`
turns each image into a flat feature vector (the pooled bottleneck of the U-Net encoder), the
chapter reduces the vectors with PCA, lets HDBSCAN pick the number of clusters ``k`` and runs
KMeans with that ``k``. The inpainter is then trained with each image's cluster id as a class:
an ``nn.Embedding`` turns the id into a vector, and every decoder block scales and shifts its
features with it (FiLM). The encoder is not conditioned, so :meth:`encode` needs no class.

Layout with ``depth`` = D, ``features`` = f: an encoder of D + 1 :class:`ConvBlock` s (f, 2f,
..., 2^D f channels, max-pooling between them), a decoder of D transposed-conv upsamplings, each
concatenated with the encoder's skip and followed by a :class:`ConditionedConvBlock`, and a 1x1
conv to the output. ``kernel_size`` sets the convs of every block.

Input: the damaged image and the mask (1 = missing, as ``restorelab.degrade.inpainting_damage``
makes them) concatenated, ``in_channels`` = image channels + 1 (4 for RGB, 2 for grey). Output:
the predicted complete image (N, out_channels, H, W); composite it with the known pixels as
``damaged * (1 - mask) + output * mask``. Any H, W (padded by reflection to a multiple of 2^D).

Initialisation (the U-Net paper's section 3): every conv's weights are drawn from a Gaussian of
standard deviation ``gain / sqrt(fan_in)`` (He et al., 2015; ``gain`` that of LeakyReLU(0.2)), so
that each feature map keeps about unit variance along every path. PyTorch's default draws them
about 2.4x smaller: the variance then shrinks about 6x per conv, the deep path through the
bottleneck starts silent, and the network fills holes with a flat grey for longer: in chapter 8's
reference recipe it first beat a mean-colour fill some 80 steps later, and from step 240 to 640
it stayed 0.9-2.1 dB behind the same seed with this initialisation
(benchmarks/results/reference_training_cpu.md).

The reference configuration (RGB + mask, f = 32, D = 4, 3x3 kernels, 8 classes, 64-d class
embedding) has 7,823,427 parameters; ``encode`` gives (N, 512) vectors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.models.padding import crop_to, pad_to_multiple

PRESETS = {
    "paper": {"in_channels": 4, "out_channels": 3},
    "grey": {"in_channels": 2, "out_channels": 1},
}


class ConvBlock(nn.Module):
    """Two convs with LeakyReLU(0.2): (N, in_ch, H, W) -> (N, out_ch, H, W)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))))


class ConditionedConvBlock(ConvBlock):
    """:class:`ConvBlock` whose middle features are modulated by a class embedding (FiLM).

    ``h = conv1(x) * (1 + scale) + shift`` with ``(scale, shift) = film(embedding)``; ``film`` starts
    at zero, so an untrained model ignores the class.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, embed_dim: int) -> None:
        super().__init__(in_ch, out_ch, kernel_size)
        self.film = nn.Linear(embed_dim, 2 * out_ch)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(embedding)[:, :, None, None].chunk(2, dim=1)
        h = self.conv1(x) * (1 + scale) + shift
        return self.act(self.conv2(self.act(h)))


def init_like_unet_paper(model: nn.Module, negative_slope: float = 0.2) -> None:
    """Draw every conv's weights of ``model`` from N(0, gain^2 / fan_in), biases zero (in place).

    ``fan_in`` is what one output pixel sums over: in_channels x kernel area for a conv,
    in_channels for a transposed conv whose stride equals its kernel (each output pixel gets one
    tap of each input channel).
    """
    gain = nn.init.calculate_gain("leaky_relu", negative_slope)
    for module in model.modules():
        if isinstance(module, nn.ConvTranspose2d):
            if module.stride != module.kernel_size:
                raise ValueError(f"expected a transposed conv with stride = kernel, got {module}")
            fan_in = module.in_channels
        elif isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * math.prod(module.kernel_size)
        else:
            continue
        nn.init.normal_(module.weight, 0.0, gain / math.sqrt(fan_in))
        nn.init.zeros_(module.bias)


class UNetInpainter(nn.Module):
    """U-Net with an unconditioned encoder and a class-conditioned (FiLM) decoder."""

    upscale = 1

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 3,
        features: int = 32,
        depth: int = 4,
        kernel_size: int = 3,
        num_classes: int = 8,
        embed_dim: int = 64,
        code_size: int = 1,
    ) -> None:
        super().__init__()
        self.depth, self.num_classes, self.code_size = depth, num_classes, code_size
        widths = [features * 2**i for i in range(depth + 1)]
        # row ``num_classes`` is the "no class" embedding, used when forward gets no class index
        self.embedding = nn.Embedding(num_classes + 1, embed_dim)
        self.encoders = nn.ModuleList(
            [ConvBlock(in_channels, widths[0], kernel_size)]
            + [ConvBlock(widths[i - 1], widths[i], kernel_size) for i in range(1, depth + 1)]
        )
        self.ups = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                for i in reversed(range(depth))
            ]
        )
        self.decoders = nn.ModuleList(
            [
                ConditionedConvBlock(2 * widths[i], widths[i], kernel_size, embed_dim)
                for i in reversed(range(depth))
            ]
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        init_like_unet_paper(self)

    @property
    def code_dim(self) -> int:
        """Length D of the vectors :meth:`encode` returns."""
        return self.encoders[-1].conv2.out_channels * self.code_size**2

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.encoders[0](x)]
        for encoder in self.encoders[1:]:
            feats.append(encoder(F.max_pool2d(feats[-1], 2)))
        return feats

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, D) features for clustering (bottleneck, average-pooled).

        To describe clean images, pass them with an all-zero mask channel.
        """
        x, _ = pad_to_multiple(x, 2**self.depth)
        bottleneck = self._encode(x)[-1]
        return F.adaptive_avg_pool2d(bottleneck, self.code_size).flatten(1)

    def forward(
        self, x: torch.Tensor, class_index: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """Inpaint ``x`` (N, in_channels, H, W) as images of cluster ``class_index`` ((N,) or int)."""
        n = x.shape[0]
        if class_index is None:
            class_index = self.num_classes
        index = torch.as_tensor(class_index, dtype=torch.long, device=x.device).expand(n)
        embedding = self.embedding(index)
        x, size = pad_to_multiple(x, 2**self.depth)
        feats = self._encode(x)
        h = feats[-1]
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(feats[:-1]), strict=True):
            h = decoder(torch.cat([up(h), skip], 1), embedding)
        return crop_to(self.head(h), size)
