"""The labs' check functions accept right answers, explain wrong ones and wait for stubs."""

from __future__ import annotations

import pytest
import torch
from scipy.fft import dctn
from torch import nn

from restorelab import models
from restorelab.checks import ch02
from restorelab.degrade import luma_quantisation_table


def stub(*args, **kwargs):
    raise NotImplementedError


def right_block_dct(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape
    blocks = image.double().numpy().reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    return torch.from_numpy(dctn(blocks, axes=(2, 3), norm="ortho"))


def test_block_dct_check():
    assert ch02.check_block_dct(right_block_dct)
    assert not ch02.check_block_dct(stub)
    with pytest.raises(AssertionError, match="DC = 4.0"):  # the unnormalised DCT
        ch02.check_block_dct(lambda x: right_block_dct(x) * 4)
    with pytest.raises(AssertionError, match="transpose"):  # blocks in the wrong order
        ch02.check_block_dct(lambda x: right_block_dct(x).transpose(2, 3))


def test_quantisation_table_check():
    assert ch02.check_quantisation_table(luma_quantisation_table)
    assert not ch02.check_quantisation_table(stub)
    with pytest.raises(AssertionError, match="quality 5"):  # forgot the clamp to [1, 255]
        ch02.check_quantisation_table(
            lambda q: luma_quantisation_table(50) * (5000 // q if q < 50 else 200 - 2 * q) // 100
        )


def test_arcnn_check():
    assert ch02.check_arcnn(lambda: models.build("arcnn"))
    assert not ch02.check_arcnn(stub)
    with pytest.raises(AssertionError, match="parameters"):
        ch02.check_arcnn(lambda: models.build("srcnn"))
    with pytest.raises(AssertionError, match="pad"):
        ch02.check_arcnn(lambda: unpadded_arcnn())


def unpadded_arcnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 64, 9), nn.ReLU(), nn.Conv2d(64, 32, 7), nn.ReLU(),
        nn.Conv2d(32, 16, 1), nn.ReLU(), nn.Conv2d(16, 1, 5),
    )  # fmt: skip
