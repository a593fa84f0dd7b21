"""Checks of lab 4 (SRResNet): pixel shuffle by hand, the residual block, ICNR initialisation."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.checks import run_check


def check_pixel_shuffle(student: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Chapter 4: (N, C*r*r, H, W) -> (N, C, H*r, W*r), equal to ``F.pixel_shuffle``."""

    def check() -> None:
        x = torch.rand(2, 12, 5, 7, generator=torch.Generator().manual_seed(0))
        got, want = student(x, 2), F.pixel_shuffle(x, 2)
        assert tuple(got.shape) == tuple(want.shape), (
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        )
        assert torch.equal(got, want), "values differ from F.pixel_shuffle (permute order?)"

    return run_check("pixel_shuffle", check)


def check_residual_block(student_class: type[nn.Module]) -> bool:
    """Chapter 4: ``x + conv2(relu(conv1(x)))`` with 3x3 convs, no batch norm."""
    from restorelab.models.srresnet import ResidualBlock

    def check() -> None:
        channels = 8
        from restorelab.models import count_params

        block = student_class(channels)
        params = list(block.parameters())
        count = count_params(block)
        want = 2 * (9 * channels * channels + channels)
        assert count == want, f"{count} parameters for 8 channels, expected {want} (two 3x3 convs)"
        x = torch.randn(2, channels, 6, 5, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for p in params:
                p.zero_()
            assert torch.equal(block(x), x), "with zero weights the block must return x: the skip"
            reference = ResidualBlock(channels, batch_norm=False, act=partial(nn.ReLU, True))
            for mine, theirs in zip(params, reference.parameters(), strict=True):
                theirs.copy_(torch.randn(theirs.shape, generator=torch.Generator().manual_seed(1)))
                mine.copy_(theirs)
            assert torch.allclose(block(x), reference(x), atol=1e-5), (
                "output differs from x + conv2(relu(conv1(x))) (layer order? padding?)"
            )

    return run_check("ResidualBlock", check)


def check_icnr(student: Callable[[nn.Conv2d, int], None]) -> bool:
    """Chapter 4: after ICNR, conv + PixelShuffle(r) gives r x r sub-pixels that are equal."""

    def check() -> None:
        torch.manual_seed(0)
        conv = nn.Conv2d(5, 3 * 4, 3, padding=1)
        student(conv, 2)
        x = torch.rand(1, 5, 6, 7, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            out = F.pixel_shuffle(conv(x), 2)
        assert float(out.std()) > 1e-3, (
            "the initialised conv outputs a constant: keep random kernels"
        )
        for dy, dx in ((0, 1), (1, 0), (1, 1)):
            assert torch.allclose(out[..., dy::2, dx::2], out[..., ::2, ::2], atol=1e-6), (
                f"sub-pixel ({dy}, {dx}) differs from (0, 0): channel c*r*r + i goes to sub-pixel i"
            )
        channels = out[0].flatten(1)
        assert not torch.allclose(channels[0], channels[1]), "output channels should differ"

    return run_check("icnr", check)
