import numpy as np
import pytest
import torch
from PIL import Image
from PIL import __version__ as PIL_VERSION

from restorelab import color
from restorelab.io import ImageReadError, grey_to_rgb, read_image, to_uint8, write_image

PIL_MAJOR = int(PIL_VERSION.split(".")[0])


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


_RAMP = np.linspace(0, 1, 24).reshape(4, 6)  # every image below shows this ramp


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("float_0_1.tif", lambda: Image.fromarray(_RAMP.astype(np.float32), mode="F")),
        ("float_0_255.tif", lambda: Image.fromarray((_RAMP * 255).astype(np.float32), mode="F")),
        ("sixteen.png", lambda: Image.fromarray(np.round(_RAMP * 65535).astype(np.uint16))),
        ("int32.tif", lambda: Image.fromarray(np.round(_RAMP * 255).astype(np.int32), mode="I")),
        (
            "palette.png",
            lambda: Image.fromarray(np.round(_RAMP * 255).astype(np.uint8)).convert("P"),
        ),
        ("bilevel.png", lambda: Image.fromarray(_RAMP > 0.5)),
    ],
)
def test_grey_modes_read_as_the_same_levels(tmp_path, name, make):
    """Float TIFFs (0-1 and 0-255), 16-bit, 32-bit, palette and 1-bit files: grey, right levels."""
    make().save(tmp_path / name)
    image = read_image(tmp_path / name, "grey")
    want = (_RAMP > 0.5).astype(float) if name == "bilevel.png" else np.round(_RAMP * 255) / 255
    assert image.shape == (1, 4, 6)
    assert np.abs(image[0].numpy() - want).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize(
    ("mode", "value", "rgb", "compression"),
    [
        ("CMYK", (0, 255, 255, 0), (255, 0, 0), None),
        ("YCbCr", (76, 85, 255), (254, 0, 0), None),
        ("YCbCr", (76, 85, 255), (254, 0, 0), "tiff_lzw"),
        ("LAB", (255, 128, 128), (254, 255, 254), None),
    ],
)
def test_colour_modes_convert_to_rgb(tmp_path, mode, value, rgb, compression):
    path = tmp_path / "x.tif"
    Image.new(mode, (3, 2), value).save(path, **({"compression": compression} if compression else {}))
    if mode == "YCbCr" and compression is None and PIL_MAJOR < 13:
        # Pillow 12 (the demo's Gradio needs it) misreads uncompressed YCbCr TIFFs: refused by name
        with pytest.raises(ImageReadError, match="x.tif: cannot read the image"):
            read_image(path)
        return
    image = read_image(path)
    assert image.shape == (3, 2, 3)
    assert (image[:, 0, 0] * 255).round().tolist() == pytest.approx(list(rgb), abs=2)


def test_float_tiff_out_of_range_is_refused_by_name(tmp_path):
    path = tmp_path / "hdr.tif"
    Image.fromarray((_RAMP * 70000 - 5).astype(np.float32), mode="F").save(path)
    with pytest.raises(ImageReadError, match=r"hdr.tif: mode F image with values in \[-5, 69995\]"):
        read_image(path, "any")
    Image.fromarray(np.full((2, 2), np.nan, np.float32), mode="F").save(path)
    with pytest.raises(ImageReadError, match="hdr.tif: .*NaN"):
        read_image(path, "any")


def test_la_composites_over_white(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (2, 2), (0, 0)).save(path)  # black, fully transparent
    with pytest.raises(ImageReadError, match="la.png: has an alpha channel \\(LA\\)"):
        read_image(path, "grey")
    assert read_image(path, "grey", alpha="white").min() == 1.0
    assert read_image(path, "grey", alpha="drop").max() == 0.0


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="a folder, not an image"):
        read_image(tmp_path)
