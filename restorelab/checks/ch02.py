"""Checks of lab 2 (AR-CNN): the blockwise DCT, JPEG's quantisation table, the four-layer network."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from restorelab.checks import check_same_size_network, run_check


def check_block_dct(student: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Chapter 2: (H, W) -> (H/8, W/8, 8, 8) orthonormal 2-D DCT-II of every 8x8 block."""
    from scipy.fft import dctn

    def check() -> None:
        image = torch.rand(16, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        got = student(image)
        assert tuple(got.shape) == (2, 3, 8, 8), f"shape {tuple(got.shape)}, expected (2, 3, 8, 8)"
        flat = torch.full((8, 8), 0.5, dtype=torch.float64)
        dc = student(flat)[0, 0]
        assert abs(float(dc[0, 0]) - 4.0) < 1e-6, (
            f"a flat block of 0.5 should give DC = 4.0 (orthonormal DCT), got {float(dc[0, 0]):.4f}"
        )
        assert float(dc.abs().sum() - dc[0, 0].abs()) < 1e-6, "a flat block has no AC energy"
        blocks = image.numpy().reshape(2, 8, 3, 8).transpose(0, 2, 1, 3)
        want = dctn(blocks, axes=(2, 3), norm="ortho")
        assert np.allclose(got.double().numpy(), want, atol=1e-6), (
            "values differ from scipy.fft.dctn(block, norm='ortho') (block order? transpose?)"
        )

    return run_check("block_dct", check)


def check_quantisation_table(student: Callable[[int], torch.Tensor]) -> bool:
    """Chapter 2: the luminance table libjpeg writes into the file, at several qualities."""
    from PIL import Image

    def check() -> None:
        pixels = (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)
        for quality in (5, 10, 50, 90):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
            buffer.seek(0)
            want = torch.tensor(list(Image.open(buffer).quantization[0])).reshape(8, 8)
            got = torch.as_tensor(student(quality))
            assert tuple(got.shape) == (8, 8), f"shape {tuple(got.shape)}, expected (8, 8)"
            assert torch.equal(got.long(), want), (
                f"quality {quality}: first row {got[0].tolist()}, the codec uses {want[0].tolist()}"
            )

    return run_check("quantisation_table", check)


def check_arcnn(student_class: type[nn.Module]) -> bool:
    """Chapter 2: AR-CNN 9-7-1-5 on one channel keeps the size and has 106,561 parameters."""
    return check_same_size_network("AR-CNN", student_class, 106_561, "9-7-1-5, 64/32/16 filters")
