"""Batched degradations: determinism, shapes and ranges, per-sample parameters, JPEG blocks,
halftone frequency, mask coverage, the Real-ESRGAN and scan pipelines."""

from __future__ import annotations

import math

import pytest
import torch

from restorelab import degrade as D
from restorelab.data.embedded import load_photo
from restorelab.degrade.blur import separable_gaussian
from restorelab.degrade.halftone import SCREEN_ANGLES
from restorelab.io import to_tensor


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real grey photo (1, 1, 128, 128): camera's upper-left quarter."""
    return to_tensor(load_photo("camera")[:256:2, 128:384:2])[None]


def _batch(n: int = 4, c: int = 3, size: int = 32) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0))


OPS = {
    "gaussian": lambda x, g: D.gaussian_noise(x, (5, 50), g, grey_prob=0.5),
    "poisson": lambda x, g: D.poisson_noise(x, (0.5, 3), g, grey_prob=0.5),
    "iso_blur": lambda x, g: D.isotropic_blur(x, (0.5, 2.5), g),
    "aniso_blur": lambda x, g: D.anisotropic_blur(x, (0.5, 3), (0.3, 1), g),
    "jpeg": lambda x, g: D.jpeg(x, (10, 90), g),
    "second_order": lambda x, g: D.second_order(x, g),
    "masks": lambda x, g: D.inpainting_damage(x, g, D.MaskConfig(noise_sigma=(0, 10)))[0],
    "halftone": lambda x, g: D.halftone(x, g),
    "colour": lambda x, g: D.color_transition(x, g),
    "external": lambda x, g: D.external_noise(x, g, dust=(2000, 5000), stain_prob=1.0),
    "internal": lambda x, g: D.internal_noise(x, g, streak_prob=1.0),
    "bleed": lambda x, g: D.bleed_through(x, g),
    "texture": lambda x, g: D.texture_distortion(x, g, warp=(1, 2), wrinkle_prob=1.0),
    "scan": lambda x, g: D.scan_damage(x, g),
}


@pytest.mark.parametrize("name", list(OPS))
def test_same_seed_same_output_and_batch_shape(name):
    x = _batch()
    a = OPS[name](x, D.make_generator(7))
    b = OPS[name](x, D.make_generator(7))
    c = OPS[name](x, D.make_generator(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    expected = (4, 3, 8, 8) if name == "second_order" else x.shape
    assert a.shape == expected and a.dtype == torch.float32
    if name not in ("gaussian", "poisson"):  # noise is not clipped by default (course rule)
        assert 0 <= a.min() and a.max() <= 1
    assert torch.equal(x, _batch())  # inputs are never modified


def test_make_generator_depends_on_every_key():
    draws = {
        keys: torch.rand(3, generator=D.make_generator(*keys)).tolist()
        for keys in [(0, 1), (1, 0), (0, 2), (1, 1)]
    }
    assert len({tuple(v) for v in draws.values()}) == 4


def test_blind_gaussian_noise_draws_sigma_per_sample():
    x = torch.full((6, 3, 64, 64), 0.5)
    noisy = D.gaussian_noise(x, (0, 50), D.make_generator(0))
    sigmas = (noisy - x).std((1, 2, 3)) * 255
    assert sigmas.max() - sigmas.min() > 5 and sigmas.max() <= 52
    fixed = D.gaussian_noise(x, 25, D.make_generator(0))
    assert torch.allclose((fixed - x).std((1, 2, 3)) * 255, torch.full((6,), 25.0), atol=1.0)


def test_grey_noise_is_equal_in_every_channel():
    noisy = D.gaussian_noise(torch.zeros(4, 3, 8, 8), 20, D.make_generator(0), grey_prob=1.0)
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 0], noisy[:, 2])


def test_poisson_noise_grows_with_brightness():
    levels = torch.tensor([0.05, 0.2, 0.8]).view(3, 1, 1, 1).expand(3, 1, 64, 64)
    noise = D.poisson_noise(levels, 1.0, D.make_generator(0)) - levels
    var = noise.var((1, 2, 3))
    assert var[0] < var[1] < var[2]
    assert torch.allclose(var, levels[:, 0, 0, 0] / 255, rtol=0.2)


def test_blur_kernels_differ_per_sample_and_sum_to_one():
    x = torch.zeros(4, 1, 31, 31)
    x[:, :, 15, 15] = 1  # an impulse shows each sample's kernel
    out = D.anisotropic_blur(x, (0.5, 3), (0.5, 3), D.make_generator(0))
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(4), atol=1e-5)
    assert len({round(float(o.max()), 4) for o in out}) == 4
    iso = D.isotropic_blur(x, (0.5, 3), D.make_generator(0))
    assert torch.allclose(iso[..., 15, :], iso[..., :, 15], atol=1e-6)  # round
    kernels = D.gaussian_kernels(9, torch.tensor([1.0, 2.0]))
    assert torch.allclose(
        separable_gaussian(x[:2], torch.tensor([1.0, 2.0]), 9),
        D.filter2d(x[:2], kernels),
        atol=1e-6,
    )


def test_sinc_kernel_is_a_low_pass_with_ringing():
    kernel = D.sinc_kernels(21, torch.tensor([math.pi / 2]))[0]
    assert abs(float(kernel.sum()) - 1) < 1e-5
    assert kernel.min() < 0  # the lobes that ring
    spectrum = torch.fft.fft2(kernel, s=(64, 64)).abs()
    assert spectrum[0, 0] > 0.9 and spectrum[0, 28] < 0.1


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a * 255).round() - (b * 255).round()).double().pow(2).mean()
    return float(10 * torch.log10(255**2 / mse))


def test_jpeg_psnr_falls_with_quality_and_qualities_differ_per_sample(photo):
    qualities = [90, 50, 20, 5]
    out = D.jpeg(photo.expand(4, -1, -1, -1), torch.tensor(qualities, dtype=torch.float32))
    psnrs = [_psnr(o, photo[0]) for o in out]
    assert psnrs == sorted(psnrs, reverse=True) and psnrs[0] - psnrs[-1] > 8
    drawn = D.jpeg_qualities(16, (10, 95), D.make_generator(0))
    assert len(set(drawn)) > 8 and 10 <= min(drawn) and max(drawn) <= 95


def _block_edge_ratio(image: torch.Tensor) -> float:
    """Mean |gradient| across 8x8 block boundaries over the mean inside blocks (rows + columns)."""
    dx = (image[:, 1:] - image[:, :-1]).abs().mean(0)  # dx[j]: between columns j and j + 1
    dy = (image[1:] - image[:-1]).abs().mean(1)
    d = dx + dy
    return float(d[7::8].mean() / torch.cat([d[k::8] for k in range(7)]).mean())


def test_jpeg_leaves_8x8_block_edges(photo):
    clean = _block_edge_ratio(photo[0, 0])
    q10, q50 = (_block_edge_ratio(D.jpeg(photo, q)[0, 0]) for q in (10, 50))
    assert clean < 1.2  # the photo has no grid of its own
    assert q10 > 1.6 and q10 > q50 > clean


def test_jpeg_colour_images_are_8_bit():
    out = D.jpeg(_batch(2, 3, 24), 75)
    assert torch.equal(out, out.mul(255).round().div(255))


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0, 0.0), SCREEN_ANGLES])
def test_halftone_dot_screen_peak_at_screen_frequency(angles):
    size, period = 128, 8.0
    grey = torch.full((1, 3, size, size), 0.5)
    printed = D.halftone(grey, D.make_generator(0), period=period, angles=angles, dot_gain=0.0)
    luma = printed.mean(1)[0]
    spectrum = torch.fft.fftshift(torch.fft.fft2(luma - luma.mean()).abs())
    peak = int(spectrum.argmax())
    fy, fx = peak // size - size // 2, peak % size - size // 2
    radius = math.hypot(fx, fy)
    assert abs(radius - size / period) <= 1.0  # 1/8 cycles per pixel: 16 bins out of 128
    angle = math.degrees(math.atan2(fy, fx)) % 90
    assert min(abs(angle - angles[3]), 90 - abs(angle - angles[3])) < 6  # along the K screen


def test_halftone_keeps_tone_and_paper():
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    printed = D.halftone(ramp, D.make_generator(0), period=4.0, dot_gain=0.0)
    assert printed[..., -1].min() > 0.99 and printed[..., 0].max() < 0.01  # white paper, solid ink
    means = printed.mean((1, 2))[0]
    assert (means[8:].mean() - means[:-8].mean()) > 0  # lighter to the right, like the input
    assert torch.allclose(D.cmyk_to_rgb(D.rgb_to_cmyk(ramp)), ramp, atol=1e-5)


@pytest.mark.parametrize("kinds", [("strokes",), ("boxes",), ("holes",), D.MaskConfig().kinds])
def test_mask_coverage_within_configured_range(kinds):
    config = D.MaskConfig(kinds=kinds, coverage=(0.15, 0.3))
    masks = D.random_masks(8, (48, 64), D.make_generator(1), config)
    coverage = masks.mean((1, 2, 3))
    assert masks.shape == (8, 1, 48, 64)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert (coverage >= 0.15).all() and (coverage <= 0.3).all(), coverage
    assert len(set(coverage.tolist())) > 4  # each sample draws its own target


def test_inpainting_damage_fills_holes_and_keeps_the_rest():
    clean = _batch(3, 3, 40)
    config = D.MaskConfig(fill=0.25, noise_sigma=0.0)
    damaged, mask = D.inpainting_damage(clean, D.make_generator(0), config)
    hole = mask.expand_as(clean).bool()
    assert (damaged[hole] == 0.25).all()
    assert torch.equal(damaged[~hole], clean[~hole])
    noisy, _ = D.inpainting_damage(clean, D.make_generator(0), D.MaskConfig(noise_sigma=10.0))
    assert not torch.equal(noisy[~hole], clean[~hole])


def test_second_order_shrinks_by_scale_and_rounds_to_8_bits():
    hr = _batch(2, 3, 64)
    config = D.SecondOrderConfig(scale=2)
    lr = D.second_order(hr, D.make_generator(0), config)
    assert lr.shape == (2, 3, 32, 32)
    assert torch.equal(lr, lr.mul(255).round().div(255))
    with pytest.raises(ValueError, match="multiple"):
        D.second_order(_batch(1, 3, 30), D.make_generator(0))


def test_scan_degradations_each_change_the_page_and_compose():
    page = torch.ones(2, 3, 64, 64)
    page[:, :, 20:40, 10:50] = torch.tensor([204, 51, 26]).view(3, 1, 1) / 255  # a red block
    g = D.make_generator(0)
    assert D.color_transition(page, g)[:, 2].mean() < page[:, 2].mean()  # yellowed / faded
    assert (D.external_noise(page, g, dust=(3000, 3000)) < 0.9).any()  # dark specks
    assert (D.bleed_through(page, g, back=1 - page, strength=0.3) < 1).any()
    assert (D.texture_distortion(page, g) - page).abs().mean() > 1e-3  # grain
    scanned = D.internal_noise(page, g)
    assert 0 < (scanned - page).abs().mean() < 0.1
    scan = D.scan_damage(page, D.make_generator(0), D.ScanConfig())
    assert scan.shape == page.shape and torch.equal(scan, scan.mul(255).round().div(255))
    off = D.ScanConfig(
        **{
            f"{k}_prob": 0.0
            for k in ("halftone", "bleed", "colour", "texture", "external", "internal")
        }
    )
    assert torch.equal(D.scan_damage(page, D.make_generator(0), off), page)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="N, C, H, W"):
        D.gaussian_noise(torch.rand(3, 8, 8), 10)
    with pytest.raises(TypeError, match="float"):
        D.jpeg(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 50)
    with pytest.raises(ValueError, match="1 or 3"):
        D.jpeg(torch.rand(1, 2, 8, 8), 50)
    with pytest.raises(ValueError, match="coverage"):
        D.MaskConfig(coverage=(0.5, 0.2))
