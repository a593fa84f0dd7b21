"""Classical denoisers (restorelab.classic) and the checks of lab 3 (DnCNN)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from restorelab import metrics
from restorelab.checks import ch03
from restorelab.classic import bm3d_denoise, nl_means_denoise
from restorelab.data import embedded_photos
from restorelab.models.dncnn import DnCNN


def stub(*args, **kwargs):
    raise NotImplementedError


def noisy_crop(channels: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    photo = embedded_photos("val")[0][:, 100 : 100 + size, 100 : 100 + size]
    clean = photo.mean(0, keepdim=True) if channels == 1 else photo
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    return clean + noise * 25 / 255, clean


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("denoise", [bm3d_denoise, nl_means_denoise])
def test_classic_denoisers_gain_more_than_3_db(denoise, channels):
    pytest.importorskip("bm3d") if denoise is bm3d_denoise else None
    noisy, clean = noisy_crop(channels)
    out = denoise(noisy, 25)
    assert out.shape == clean.shape and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    gain = metrics.psnr(out, clean) - metrics.psnr(noisy.clamp(0, 1), clean)
    assert gain > 3, f"{denoise.__name__} gains only {gain:.2f} dB"


def test_classic_rejects_batches():
    with pytest.raises(ValueError, match="C, H, W"):
        nl_means_denoise(torch.rand(2, 1, 8, 8), 25)


def right_noise(clean, sigma, generator):
    return clean + torch.randn(clean.shape, generator=generator) * sigma / 255


def test_gaussian_noise_check():
    assert ch03.check_gaussian_noise(right_noise) is True
    assert ch03.check_gaussian_noise(stub) is False
    with pytest.raises(AssertionError, match="divide by 255"):
        ch03.check_gaussian_noise(lambda c, s, g: c + torch.randn(c.shape, generator=g) * s)
    with pytest.raises(AssertionError, match="clipped"):
        ch03.check_gaussian_noise(lambda c, s, g: right_noise(c, s, g).clamp(0, 1))


def test_gaussian_noise_check_tries_the_gpu_where_there_is_one(monkeypatch):
    """In Colab the check also draws the noise on the GPU, as training will; noise drawn without
    the image's device fails there, and the check says what to write. No GPU here: the third
    call (the GPU one) raises what torch raises in that case."""
    calls = []
    generator = torch.Generator
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self: self)
    monkeypatch.setattr(torch, "Generator", lambda device="cpu": generator())

    def without_device(clean, sigma, generator):
        calls.append(clean)
        if len(calls) == 3:
            raise RuntimeError("Expected a 'cpu' device type for generator but found 'cuda'")
        return right_noise(clean, sigma, generator)

    with pytest.raises(AssertionError, match=r"on the GPU: Expected .*device=clean\.device"):
        ch03.check_gaussian_noise(without_device)
    assert len(calls) == 3


class Plain(DnCNN):
    """Right layers, but returns the noise: the non-residual mistake."""

    def __init__(self, depth, features):
        super().__init__(1, 1, depth, features)

    def forward(self, x):
        return self.noise(x)


def test_dncnn_check():
    assert ch03.check_dncnn(lambda depth, features: DnCNN(1, 1, depth, features)) is True
    assert ch03.check_dncnn(stub) is False
    with pytest.raises(AssertionError, match="x - f"):
        ch03.check_dncnn(Plain)
    with pytest.raises(AssertionError, match="parameters"):
        ch03.check_dncnn(lambda d, f: DnCNN(1, 1, d, f, batch_norm=False))
    with pytest.raises(AssertionError):
        ch03.check_dncnn(lambda d, f: nn.Conv2d(1, 1, 3))


def test_denormalise_check():
    assert ch03.check_denormalise(lambda x: ((x + 1) / 2).clamp(0, 1)) is True
    assert ch03.check_denormalise(stub) is False
    with pytest.raises(AssertionError, match="black"):
        ch03.check_denormalise(lambda x: x.clamp(0, 1))
    with pytest.raises(AssertionError, match="0.5, 1"):
        ch03.check_denormalise(lambda x: (x.clamp(0, 1) + 1) / 2)
