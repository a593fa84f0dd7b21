import numpy as np
import pytest
import torch
from PIL import Image

from restorelab import color
from restorelab.io import ImageReadError, grey_to_rgb, read_image, to_uint8, write_image


def test_round_trip_png(tmp_path):
    image = torch.rand(3, 17, 23)
    path = write_image(tmp_path / "x.png", image)
    back = read_image(path)
    assert back.shape == (3, 17, 23)
    assert (back - image).abs().max() <= 0.5 / 255 + 1e-6


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_grey_where_rgb_expected(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(path)
    with pytest.raises(ImageReadError, match="grey.png.*greyscale"):
        read_image(path, "rgb")
    assert read_image(path, "grey").shape == (1, 5, 6)
    assert grey_to_rgb(read_image(path, "any")).shape == (3, 5, 6)


def test_rgb_where_grey_expected(tmp_path):
    path = tmp_path / "c.png"
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(path)
    with pytest.raises(ImageReadError, match="c.png"):
        read_image(path, "grey")


def test_rgba_needs_a_decision(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    path = tmp_path / "a.png"
    Image.fromarray(rgba).save(path)
    with pytest.raises(ImageReadError, match="a.png.*RGBA"):
        read_image(path)
    assert read_image(path, alpha="drop")[0].min() == 1.0
    assert read_image(path, alpha="white").min() == 1.0  # transparent -> white


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([[[-0.2, 0.6 / 255, 1.4 / 255, 1.3]]])
    assert to_uint8(x).tolist() == [[0, 1, 1, 255]]


@pytest.mark.parametrize("convention", ["studio", "full"])
def test_ycbcr_round_trip(convention):
    x = torch.rand(2, 3, 6, 7)
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(x, convention), convention)
    assert torch.allclose(back, x, atol=1e-5)


def test_studio_range_limits():
    white, black = torch.ones(3, 1, 1), torch.zeros(3, 1, 1)
    assert color.rgb_to_y(white).item() == pytest.approx(235 / 255, abs=1e-6)
    assert color.rgb_to_y(black).item() == pytest.approx(16 / 255, abs=1e-6)
    assert color.rgb_to_y(white, "full").item() == pytest.approx(1.0, abs=1e-6)


def test_color_rejects_grey():
    with pytest.raises(ValueError, match="RGB"):
        color.rgb_to_y(torch.rand(1, 4, 4))
