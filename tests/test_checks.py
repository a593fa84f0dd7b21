"""The labs' check functions accept right answers, explain wrong ones and wait for stubs."""

from __future__ import annotations

import pytest
import torch
from scipy.fft import dctn
from torch import nn

from restorelab import models
from restorelab.checks import ch02, ch04, ch05, ch06, ch07, ch08, ch09
from restorelab.competition import ContractError
from restorelab.degrade import luma_quantisation_table
from restorelab.models.layers import icnr_
from restorelab.train.config import Plateau


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


def right_residual_block(channels: int) -> nn.Module:
    from functools import partial

    from restorelab.models.srresnet import ResidualBlock

    return ResidualBlock(channels, batch_norm=False, act=partial(nn.ReLU, True))


class NoSkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_residual_block_check():
    assert ch04.check_residual_block(right_residual_block)
    assert not ch04.check_residual_block(stub)
    with pytest.raises(AssertionError, match="skip"):
        ch04.check_residual_block(NoSkipBlock)


def test_pixel_shuffle_check():
    assert ch04.check_pixel_shuffle(torch.nn.functional.pixel_shuffle)
    with pytest.raises(AssertionError, match="permute"):  # sub-pixels in the wrong order
        ch04.check_pixel_shuffle(lambda x, r: torch.nn.functional.pixel_shuffle(x.flip(1), r))


def test_icnr_check():
    assert ch04.check_icnr(icnr_)
    assert not ch04.check_icnr(stub)
    with pytest.raises(AssertionError, match="sub-pixel"):  # repeat instead of repeat_interleave
        ch04.check_icnr(lambda conv, r: conv.weight.data.copy_(conv.weight[:3].repeat(4, 1, 1, 1)))
    with pytest.raises(AssertionError, match="constant"):
        ch04.check_icnr(lambda conv, r: (conv.weight.data.zero_(), conv.bias.data.zero_()))


def test_icnr_makes_the_shuffled_output_a_nearest_upsampling():
    conv = nn.Conv2d(4, 2 * 9, 3, padding=1)
    icnr_(conv, 3)
    x = torch.rand(1, 4, 5, 5)
    with torch.no_grad():
        out = torch.nn.functional.pixel_shuffle(conv(x), 3)
        low = torch.nn.functional.conv2d(x, conv.weight[::9], conv.bias[::9], padding=1)
    assert torch.allclose(out, torch.nn.functional.interpolate(low, scale_factor=3), atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        icnr_(nn.Conv2d(4, 10, 3), 2)


def test_kba_filter_check():
    from restorelab.models.kbnet import kernel_basis_filter

    assert ch05.check_kba_filter(kernel_basis_filter)
    assert not ch05.check_kba_filter(stub)
    with pytest.raises(AssertionError, match="bias"):
        ch05.check_kba_filter(lambda x, a, w, b, k, g: kernel_basis_filter(x, a, w, 0 * b, k, g))
    with pytest.raises(AssertionError, match="channel-major"):  # bases laid out per group wrong
        ch05.check_kba_filter(
            lambda x, a, w, b, k, g: kernel_basis_filter(x, a, w.flip(-1), b, k, g)
        )


def test_simple_gate_check():
    assert ch05.check_simple_gate(lambda x: x[:, : x.shape[1] // 2] * x[:, x.shape[1] // 2 :])
    assert not ch05.check_simple_gate(stub)
    with pytest.raises(AssertionError, match="shape"):  # split along the width
        ch05.check_simple_gate(lambda x: x[..., :2] * x[..., 2:4])
    with pytest.raises(AssertionError, match="x\\[:, :C\\]"):
        ch05.check_simple_gate(lambda x: x[:, :3] + x[:, 3:])


def test_competition_config_check():
    small = {"width": 32, "enc_blocks": (1, 2, 2), "middle_blocks": 6, "dec_blocks": (1, 1, 1)}
    assert ch05.check_competition_config(lambda: small)
    assert not ch05.check_competition_config(stub)
    preset = {"width": 32, "enc_blocks": [2, 2, 4], "middle_blocks": 4, "dec_blocks": (2, 2, 2)}
    with pytest.raises(AssertionError, match="the competition preset itself"):
        ch05.check_competition_config(lambda: preset)  # its numbers, lists or tuples
    with pytest.raises(AssertionError, match="not a preset"):
        ch05.check_competition_config(lambda: {"preset": "competition"})
    with pytest.raises(AssertionError, match="under 10M"):
        ch05.check_competition_config(dict)  # the paper's 142M
    with pytest.raises(AssertionError, match="over 1M"):
        ch05.check_competition_config(lambda: {"width": 8, "enc_blocks": (1,), "middle_blocks": 1,
                                               "dec_blocks": (1,)})  # fmt: skip
    with pytest.raises(AssertionError, match="of 32 above 32"):  # 48 channels at level 1
        ch05.check_competition_config(lambda: small | {"width": 24})


def right_transposed_attention(q, k, v, temperature):
    q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    return torch.softmax(q @ k.transpose(-2, -1) * temperature, dim=-1) @ v


def test_transposed_attention_check():
    assert ch06.check_transposed_attention(right_transposed_attention)
    assert not ch06.check_transposed_attention(stub)
    with pytest.raises(AssertionError, match="normalise"):
        ch06.check_transposed_attention(
            lambda q, k, v, t: torch.softmax(q @ k.transpose(-2, -1) * t, -1) @ v
        )
    with pytest.raises(AssertionError, match="temperature"):
        ch06.check_transposed_attention(lambda q, k, v, t: right_transposed_attention(q, k, v, 1))


class UngatedFFN(nn.Module):
    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        from restorelab.models.restormer import GDFN

        reference = GDFN(dim, expansion)
        self.project_in, self.dwconv = reference.project_in, reference.dwconv
        self.project_out = reference.project_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(torch.nn.functional.gelu(a + b))


def test_gdfn_check():
    from restorelab.models.restormer import GDFN

    assert ch06.check_gdfn(GDFN)
    assert not ch06.check_gdfn(stub)
    with pytest.raises(AssertionError, match="GELU"):
        ch06.check_gdfn(UngatedFFN)
    with pytest.raises(AssertionError, match="parameters"):
        ch06.check_gdfn(lambda dim, expansion: nn.Conv2d(dim, dim, 1))


def test_progressive_schedule_check():
    from restorelab.train.sampling import progressive_phase

    phases = ((0, 128, 8), (92, 160, 5), (156, 192, 4), (204, 256, 2), (240, 320, 1), (276, 384, 1))
    assert ch06.check_progressive_schedule(lambda step: progressive_phase(phases, step))
    assert not ch06.check_progressive_schedule(stub)
    with pytest.raises(AssertionError, match="step 92"):  # the switch one step late
        ch06.check_progressive_schedule(lambda step: progressive_phase(phases, step - 1))


def test_ragan_discriminator_loss_check():
    from restorelab import losses

    assert ch07.check_ragan_discriminator_loss(losses.ragan_discriminator_loss)
    assert not ch07.check_ragan_discriminator_loss(stub)
    with pytest.raises(AssertionError, match="0.5"):
        ch07.check_ragan_discriminator_loss(lambda r, f: 2 * losses.ragan_discriminator_loss(r, f))
    with pytest.raises(AssertionError, match="vanilla"):
        ch07.check_ragan_discriminator_loss(losses.vanilla_discriminator_loss)
    with pytest.raises(AssertionError, match="swapped"):
        ch07.check_ragan_discriminator_loss(losses.ragan_generator_loss)


def test_gradient_penalty_check():
    from restorelab import losses

    assert ch07.check_gradient_penalty(losses.gradient_penalty)
    assert not ch07.check_gradient_penalty(stub)

    def without_graph(critic, real, fake, generator):
        return losses.gradient_penalty(critic, real, fake, generator).detach()

    with pytest.raises(AssertionError, match="create_graph"):
        ch07.check_gradient_penalty(without_graph)
    with pytest.raises(AssertionError, match="expected"):  # the squared norm, not (norm - 1)^2
        ch07.check_gradient_penalty(lambda c, r, f, g: losses.gradient_penalty(c, r, f, g) + 1)


def test_interpolation_check():
    from restorelab.train import interpolate_weights

    assert ch07.check_interpolation(interpolate_weights)
    assert not ch07.check_interpolation(stub)
    with pytest.raises(AssertionError, match="alpha = 0"):
        ch07.check_interpolation(lambda p, g, a: interpolate_weights(p, g, 1 - a))


def opencv_y(rgb):
    rgb = rgb.astype("int64")
    return (4899 * rgb[..., 0] + 9617 * rgb[..., 1] + 1868 * rgb[..., 2] + 8192) >> 14


def test_ch09_y_mae_check():
    def right(pred, target):
        return float(abs(opencv_y(pred) - opencv_y(target)).mean())

    def float_luma(rgb):
        return rgb @ [0.299, 0.587, 0.114]

    assert ch09.check_y_mae(right)
    assert not ch09.check_y_mae(stub)
    with pytest.raises(AssertionError, match="8-bit scale"):
        ch09.check_y_mae(lambda p, t: right(p, t) / 255)
    with pytest.raises(AssertionError, match="error of the mean Y"):
        ch09.check_y_mae(lambda p, t: abs(float(float_luma(p).mean() - float_luma(t).mean())))
    with pytest.raises(AssertionError, match="OpenCV's rounding"):  # unrounded float luma
        ch09.check_y_mae(lambda p, t: float(abs(float_luma(p) - float_luma(t)).mean()))


def test_ch09_mean_y_csv_check():
    from restorelab.competition import write_mean_y_csv
    from restorelab.competition.make import mean_y

    def right(images, path):
        write_mean_y_csv({name: mean_y(image) for name, image in images.items()}, path)

    assert ch09.check_mean_y_csv(right)
    assert not ch09.check_mean_y_csv(stub)
    with pytest.raises(AssertionError, match="header"):
        ch09.check_mean_y_csv(lambda images, path: path.write_text("name,value\na.png,1\n"))
    with pytest.raises(AssertionError, match="mean full-range 8-bit Y"):  # the mean of [0, 1] RGB
        ch09.check_mean_y_csv(
            lambda images, path: write_mean_y_csv(
                {name: float(image.mean()) for name, image in images.items()}, path
            )
        )


def test_ch09_tiled_predict_check():
    from restorelab.infer import predict

    assert ch09.check_tiled_predict(lambda m, x, tile, overlap: predict(m, x, tile, overlap))
    assert not ch09.check_tiled_predict(stub)
    with pytest.raises(AssertionError, match="over the tile"):  # whole images are not tiles
        ch09.check_tiled_predict(lambda m, x, tile, overlap: predict(m, x))

    def seams(model, x, tile, overlap):  # tiles without overlap: the borders of each tile differ
        out = torch.zeros_like(x)
        for top in range(0, x.shape[1], tile):
            for left in range(0, x.shape[2], tile):
                crop = x[:, top : top + tile, left : left + tile]
                out[:, top : top + tile, left : left + tile] = model(crop[None])[0]
        return out

    with pytest.raises(AssertionError, match="differs from the whole image"):
        ch09.check_tiled_predict(seams)


def test_ch09_submission_check():
    import json

    from restorelab.competition import write_submission

    assert ch09.check_submission(lambda m, card, data, out: write_submission(m, card, data, out))
    assert not ch09.check_submission(stub)

    def no_card(model, card, data, out):
        write_submission(model, card, data, out)
        (out / "model.json").unlink()

    with pytest.raises(ContractError, match="model.json: missing"):
        ch09.check_submission(no_card)

    def other_model(model, card, data, out):  # weights of another size than the card says
        write_submission(model, card, data, out)
        (out / "model.json").write_text(json.dumps(card | {"kwargs": {"depth": 4}}))

    with pytest.raises(ContractError, match="do not fit"):
        ch09.check_submission(other_model)

    def the_scans(model, card, data, out):  # the scans themselves: valid, but not the model's
        write_submission(torch.nn.Identity(), card, data, out)
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors"
        )

    with pytest.raises(AssertionError, match="the model's own outputs"):
        ch09.check_submission(the_scans)


def test_ch08_composite_check():
    assert ch08.check_composite(lambda d, m, o: d * (1 - m) + o * m)
    assert not ch08.check_composite(stub)
    with pytest.raises(AssertionError, match="swapped"):
        ch08.check_composite(lambda d, m, o: d * m + o * (1 - m))
    with pytest.raises(AssertionError, match="known pixels"):
        ch08.check_composite(lambda d, m, o: o)


def test_ch08_count_clusters_check():
    from restorelab.cluster import count_clusters

    assert ch08.check_count_clusters(count_clusters)
    assert not ch08.check_count_clusters(stub)
    with pytest.raises(AssertionError, match="noise"):
        ch08.check_count_clusters(lambda labels: len(set(labels.tolist())))
    with pytest.raises(AssertionError, match="k >= 1"):
        ch08.check_count_clusters(lambda labels: len(set(labels.tolist()) - {-1}))


class LatePlateau(Plateau):
    """torch's ReduceLROnPlateau rule: cut after patience + 1 bad validations."""

    def step(self, score):
        if score > self.best:
            self.best, self.bad = score, 0
            return False
        self.bad += 1
        if self.bad <= self.patience:
            return False
        self.scale *= self.gamma
        self.bad = 0
        return True


def test_ch08_plateau_check():
    assert ch08.check_plateau(Plateau)
    assert not ch08.check_plateau(stub)
    with pytest.raises(AssertionError, match="late"):
        ch08.check_plateau(LatePlateau)
