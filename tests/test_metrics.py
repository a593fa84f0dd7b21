import urllib.error
import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restorelab import metrics
from restorelab.backbones import MissingWeightsError
from restorelab.data import embedded_photos
from restorelab.io import to_uint8


def _pair(seed=0, channels=3):
    rng = np.random.default_rng(seed)
    a = embedded_photos("val")[0][:channels, :64, :80]
    target = to_uint8(a)
    noisy = np.clip(target.astype(int) + rng.integers(-12, 13, target.shape), 0, 255).astype(
        np.uint8
    )
    return noisy, target


def test_psnr_matches_skimage():
    pred, target = _pair()
    assert metrics.psnr(pred, target) == pytest.approx(
        peak_signal_noise_ratio(target, pred, data_range=255), abs=1e-3
    )


def test_ssim_matches_skimage_gaussian_form():
    pred, target = _pair(1)
    want = structural_similarity(
        target, pred, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert metrics.ssim(pred, target) == pytest.approx(want, abs=1e-6)  # the bar


def test_y_channel_and_border_follow_the_sr_convention():
    pred, target = _pair(2)
    y = lambda im: (im.astype(np.float64) @ [65.481, 128.553, 24.966]) / 255 + 16  # noqa: E731
    b = 4
    want_psnr = peak_signal_noise_ratio(y(target)[b:-b, b:-b], y(pred)[b:-b, b:-b], data_range=255)
    assert metrics.psnr(pred, target, crop_border=b, y_channel=True) == pytest.approx(
        want_psnr, abs=1e-3
    )
    want_ssim = structural_similarity(
        y(target)[b:-b, b:-b], y(pred)[b:-b, b:-b], data_range=255, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False,
    )  # fmt: skip
    assert metrics.ssim(pred, target, crop_border=b, y_channel=True) == pytest.approx(
        want_ssim, abs=1e-6
    )


@pytest.mark.parametrize("strip_values", [1, 500, 4000])
def test_strips_give_the_values_of_the_whole_image(monkeypatch, strip_values):
    """Strips of 1 row, a few rows, and the whole image: same PSNR and SSIM (bounded memory)."""
    gen = torch.Generator().manual_seed(5)
    target = torch.rand(2, 3, 37, 29, generator=gen)
    pred = (target + 0.1 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    args = {"crop_border": 3, "y_channel": True}
    whole = metrics.ssim(pred, target, **args), metrics.psnr(pred, target, **args)
    rgb = metrics.ssim(pred, target), metrics.psnr(pred, target)
    monkeypatch.setattr(metrics, "STRIP_VALUES", strip_values)
    assert metrics.ssim(pred, target, **args) == pytest.approx(whole[0], abs=1e-12)
    assert metrics.psnr(pred, target, **args) == pytest.approx(whole[1], abs=1e-12)
    assert metrics.ssim(pred, target) == pytest.approx(rgb[0], abs=1e-12)
    assert metrics.psnr(pred, target) == pytest.approx(rgb[1], abs=1e-12)


def test_ssim_of_a_large_image_works_strip_by_strip(monkeypatch):
    """A 2000x1500 RGB pair: each strip holds at most STRIP_VALUES values per channel set."""
    seen = []
    levels = metrics._levels

    def spy(x, y_channel=False):
        seen.append(x.numel())
        return levels(x, y_channel)

    monkeypatch.setattr(metrics, "_levels", spy)
    a = torch.randint(0, 256, (3, 2000, 1500), dtype=torch.uint8)
    b = a.clone()
    b[:, ::5] ^= 8
    assert 0.5 < metrics.ssim(a, b) < 1
    halo_rows = (metrics.WINDOW - 1) * 3 * 1500
    assert len(seen) > 10 and max(seen) <= metrics.STRIP_VALUES + 3 * 1500 + halo_rows


def test_ssim_too_small_says_so():
    with pytest.raises(ValueError, match="at least 11x11 pixels, got \\(8, 20\\) after shaving 2"):
        metrics.ssim(torch.rand(1, 12, 24), torch.rand(1, 12, 24), crop_border=2)


def test_tensor_inputs_are_rounded_to_8_bits_first():
    pred, target = _pair(3)
    as_tensor = lambda im: torch.from_numpy(im.transpose(2, 0, 1)).float() / 255 + 0.4 / 255  # noqa: E731
    assert metrics.psnr(as_tensor(pred), as_tensor(target)) == pytest.approx(
        metrics.psnr(pred, target)
    )
    batch = torch.stack([as_tensor(pred), as_tensor(target)])
    both = metrics.psnr(batch, torch.stack([as_tensor(target)] * 2))
    assert np.isinf(both)  # mean over images, one of which is identical


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 9))


def test_y_mae_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    pred, target = _pair(4)
    want = np.abs(
        cv2.cvtColor(pred, cv2.COLOR_RGB2YUV)[..., 0].astype(int)
        - cv2.cvtColor(target, cv2.COLOR_RGB2YUV)[..., 0]
    ).mean()
    assert metrics.y_mae(pred, target) == pytest.approx(want, abs=1e-9)
    assert metrics.y_mae(target, target) == 0.0


def test_lpips_random_backbone_ranks_distortions():
    pytest.importorskip("lpips")
    torch.manual_seed(0)
    lpips = metrics.LPIPS(pretrained_backbone=False)
    clean = embedded_photos("val")[0][None, :, :64, :64]
    slightly = (clean + 0.02 * torch.randn_like(clean)).clamp(0, 1)
    heavily = (clean + 0.3 * torch.randn_like(clean)).clamp(0, 1)
    assert lpips(clean, clean).item() == pytest.approx(0, abs=1e-6)
    assert lpips(clean, heavily).item() > lpips(clean, slightly).item() > 0


def test_lpips_says_clearly_when_weights_cannot_download(monkeypatch, tmp_path, capsys):
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchvision's deprecation warnings stay inside
        with pytest.raises(MissingWeightsError, match="alexnet-owt-.*missing from") as raised:
            metrics.LPIPS(pretrained_backbone=True)
    assert "\n" not in raised.value.summary and "LPIPS (alex)" in raised.value.summary
    printed = capsys.readouterr()
    assert printed.out == printed.err == ""  # no "Downloading: ..." line on a page
