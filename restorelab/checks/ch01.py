"""Checks of lab 1 (SRCNN): the luma channel, the Y-PSNR convention, the three-layer network."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from restorelab.checks import check_same_size_network, run_check


def check_rgb_to_y(student: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Chapter 1: the studio-range (BT.601) luma of an RGB batch (N, 3, H, W) -> (N, 1, H, W)."""
    from restorelab.color import rgb_to_y

    def check() -> None:
        image = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0))
        got, want = student(image), rgb_to_y(image)
        assert tuple(got.shape) == tuple(want.shape), (
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        )
        white = student(torch.ones(1, 3, 1, 1)).item()
        assert abs(white - 235 / 255) < 1e-4, f"white should give Y = 235/255, got {white:.4f}"
        assert torch.allclose(got.float(), want, atol=1e-4), "values differ from BT.601 studio Y"

    return run_check("rgb_to_y", check)


def check_psnr_y(student: Callable[[torch.Tensor, torch.Tensor, int], float]) -> bool:
    """Chapter 1: Y-channel PSNR with ``border`` pixels shaved, on 8-bit-rounded images."""
    from restorelab.metrics import psnr

    def check() -> None:
        gen = torch.Generator().manual_seed(1)
        target = torch.rand(3, 32, 32, generator=gen)
        pred = (target + 0.05 * torch.randn(3, 32, 32, generator=gen)).clamp(0, 1)
        for border in (0, 4):
            got = float(student(pred, target, border))
            want = psnr(pred, target, crop_border=border, y_channel=True)
            assert abs(got - want) < 1e-2, f"border={border}: got {got:.3f} dB, expected {want:.3f}"

    return run_check("psnr_y", check)


def check_srcnn(student_class: type[nn.Module]) -> bool:
    """Chapter 1: a 9-5-5 SRCNN on one channel keeps the size and has 57,281 parameters."""
    return check_same_size_network("SRCNN", student_class, 57_281, "9-5-5, 64/32 filters")
