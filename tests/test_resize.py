import numpy as np
import pytest
import torch

from restorelab.degrade import bicubic_resize
from restorelab.io import list_images, read_image, to_uint8
from restorelab.metrics import psnr

SCALES = (2, 3, 4)


@pytest.mark.parametrize("scale", SCALES)
def test_matches_matlab_on_set5(datasets_dir, scale):
    """Every Set5 image at 1/2, 1/3, 1/4 matches MATLAB's LR_bicubic files at >= 55 dB."""
    set5 = datasets_dir / "Set5"
    for path in list_images(set5):
        hr = read_image(path)
        h, w = hr.shape[-2:]
        hr = hr[:, : h - h % scale, : w - w % scale]
        ours = to_uint8(bicubic_resize(hr, 1 / scale))
        matlab = to_uint8(
            read_image(set5 / "LR_bicubic" / f"X{scale}" / f"{path.stem}x{scale}.png")
        )
        assert ours.shape == matlab.shape, path.name
        assert psnr(ours, matlab) >= 55.0, f"{path.name} x{scale}: {psnr(ours, matlab):.2f} dB"


def test_sizes_follow_matlab():
    x = torch.rand(2, 3, 17, 10)
    assert bicubic_resize(x, 0.5).shape == (2, 3, 9, 5)  # ceil
    assert bicubic_resize(x, 2).shape == (2, 3, 34, 20)
    assert bicubic_resize(x[0], size=(5, 7)).shape == (3, 5, 7)
    assert bicubic_resize(torch.rand(1, 1, 171, 99), 1 / 3).shape == (1, 1, 57, 33)


def test_constant_stays_constant_and_batch_matches_single():
    x = torch.full((1, 3, 12, 12), 0.3)
    assert torch.allclose(bicubic_resize(x, 0.25), torch.full((1, 3, 3, 3), 0.3), atol=1e-6)
    batch = torch.rand(3, 1, 16, 16)
    single = torch.stack([bicubic_resize(b, 0.5) for b in batch])
    assert torch.allclose(bicubic_resize(batch, 0.5), single, atol=1e-6)


def test_upscale_interpolates_known_samples():
    """Upscaling by 2 then downscaling by 2 stays close to the original (smooth image)."""
    yy, xx = np.mgrid[0:32, 0:32] / 32
    smooth = torch.tensor(np.sin(3 * xx) * np.cos(2 * yy) * 0.4 + 0.5, dtype=torch.float32)[None]
    back = bicubic_resize(bicubic_resize(smooth, 2), 0.5)
    assert (back - smooth)[..., 4:-4, 4:-4].abs().max() < 0.01


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        bicubic_resize(torch.rand(3, 4, 4))
    with pytest.raises(TypeError, match="float"):
        bicubic_resize(torch.zeros(3, 4, 4, dtype=torch.uint8), 2)
