"""Checks of lab 4 (SRResNet): pixel shuffle by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from restorelab.checks import run_check


def check_pixel_shuffle(student: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Chapter 4: (N, C*r*r, H, W) -> (N, C, H*r, W*r), equal to ``F.pixel_shuffle``."""

    def check() -> None:
        x = torch.rand(2, 12, 5, 7, generator=torch.Generator().manual_seed(0))
        for r in (2,):
            got, want = student(x, r), F.pixel_shuffle(x, r)
            assert tuple(got.shape) == tuple(want.shape), (
                f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
            assert torch.equal(got, want), "values differ from F.pixel_shuffle (permute order?)"

    return run_check("pixel_shuffle", check)
