"""The model zoo: parameter counts of the papers, any input size, trainability, autocast, and
loading the official checkpoints (state dicts built here in the official key layouts)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from restorelab import models
from restorelab.models import load_official
from restorelab.models.padding import (
    EdgePaddedConv2d,
    concatenated_edges,
    crop_to,
    pad_to_multiple,
)
from restorelab.models.unet_inpainter import init_like_unet_paper

COURSE_NAMES = {"srcnn", "arcnn", "dncnn", "srresnet", "msrresnet", "kbnet", "restormer",
                "rrdbnet", "vgg_discriminator", "unet_inpainter"}  # fmt: skip

# (name, preset, overrides, exact trainable parameters)
COUNTS = [
    ("srcnn", "paper", {}, 57_281),
    ("arcnn", "paper", {}, 106_561),
    ("dncnn", "paper", {}, 557_057),
    ("dncnn", "color_blind", {}, 670_531),
    ("dncnn", "gray_blind", {}, 668_225),
    ("dncnn", "paper", {"batch_norm": False}, 555_137),  # KAIR's released, BN-folded files
    ("srresnet", "paper", {}, 1_549_462),
    ("msrresnet", "paper", {}, 1_517_571),
    ("kbnet", "paper", {}, 141_966_659),  # built, never run here
    ("kbnet", "competition", {}, 5_961_891),
    ("restormer", "paper", {}, 26_126_644),
    ("restormer", "denoising", {}, 26_111_668),
    ("restormer", "competition", {}, 6_676_132),
    ("rrdbnet", "paper", {}, 16_697_987),
    ("rrdbnet", "competition", {}, 8_810_243),
    ("rrdbnet", "competition", {"upscale": 4}, 8_784_323),
    ("vgg_discriminator", "paper", {}, 14_499_401),
    ("unet_inpainter", "paper", {}, 7_823_427),
]

# small configurations of every image-to-image model (seconds on 2 CPU cores)
SMALL = {
    "srcnn": {"features": (16, 8)},
    "arcnn": {"features": (16, 8, 8)},
    "dncnn": {"depth": 5, "features": 16},
    "srresnet": {"features": 16, "num_blocks": 2},
    "msrresnet": {"features": 16, "num_blocks": 2},
    "kbnet": {"width": 16, "enc_blocks": (1, 1), "middle_blocks": 1, "dec_blocks": (1, 1)},
    "restormer": {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
    "rrdbnet": {"features": 16, "growth": 8, "num_blocks": 1},
    "unet_inpainter": {"features": 8, "depth": 3},
}


def small(name: str, channels: int = 3, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    extra = 1 if name == "unet_inpainter" else 0  # + the mask channel
    kwargs = {"in_channels": channels + extra, "out_channels": channels}
    return models.build(name, **{**SMALL[name], **kwargs, **overrides})


def test_available_lists_the_course_models():
    assert COURSE_NAMES <= set(models.available())


@pytest.mark.parametrize(("name", "preset", "overrides", "expected"), COUNTS)
def test_parameter_counts_match_the_papers(name, preset, overrides, expected):
    model = models.build(name, preset, **overrides)
    assert models.count_params(model) == expected
    if preset == "competition":
        assert expected < 10_000_000


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("channels", [1, 3])
def test_any_input_size(name, channels):
    model = small(name, channels).eval()
    s = model.upscale
    x = torch.rand(1, model_in_channels(name, channels), 67, 71)
    with torch.no_grad():
        assert model(x).shape == (1, channels, 67 * s, 71 * s)


def model_in_channels(name: str, channels: int) -> int:
    return channels + 1 if name == "unet_inpainter" else channels


def test_padding_helper_round_trip_and_tiny_inputs():
    x = torch.rand(2, 3, 5, 9)
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (8, 16) and size == (5, 9)
    assert torch.equal(crop_to(padded, size), x)
    tiny, _ = pad_to_multiple(torch.rand(1, 1, 2, 3), 8)  # too small to reflect: replicate
    assert tiny.shape[-2:] == (8, 8)


def test_replicate_padding_by_concatenation_is_torchs_replicate_padding():
    x = torch.rand(2, 3, 5, 9, requires_grad=True)
    g = torch.rand(2, 3, 21, 21)
    for padding in [(0, 0, 0, 0), (4, 4, 4, 4), (0, 3, 0, 5), (2, 0, 1, 0), (7, 5, 9, 7)]:
        ours, torchs = concatenated_edges(x, padding), F.pad(x, padding, mode="replicate")
        assert torch.equal(ours, torchs)
        shape = ours.shape[-2:]
        (grad,) = torch.autograd.grad((ours * g[..., : shape[0], : shape[1]]).sum(), x)
        (expected,) = torch.autograd.grad((torchs * g[..., : shape[0], : shape[1]]).sum(), x)
        torch.testing.assert_close(grad, expected)  # equal up to the order of the edge sums
    for padding in (2, (1, 3), "same"):
        edge = EdgePaddedConv2d(3, 4, 5, padding=padding, padding_mode="replicate")
        plain = torch.nn.Conv2d(3, 4, 5, padding=padding, padding_mode="replicate")
        plain.load_state_dict(edge.state_dict())  # the same parameters and keys
        assert torch.equal(edge(x), plain(x))  # eager: F.pad itself
        torch.testing.assert_close(torch.compile(edge)(x), plain(x))


def test_edge_padded_srcnn_trains_compiled_in_bf16_and_channels_last():
    """torch 2.11-2.14 could not compile the backward of F.pad's replicate mode after a
    convolution (assert_size_stride) under Inductor's layout optimisation, on by default."""
    from restorelab.train import TrainConfig, Trainer

    torch.manual_seed(0)
    net = models.build("srcnn", features=(8, 4), kernel_sizes=(5, 3, 3))
    pairs = [(torch.rand(1, 24, 24), torch.rand(1, 24, 24)) for _ in range(4)]
    config = TrainConfig(steps=2, batch_size=2, device="cpu", amp="bf16", compile=True,
                         channels_last=True, progress=False, tensorboard=False, val_every=0,
                         prefetch=0)  # fmt: skip
    trainer = Trainer(net, pairs, F.mse_loss, config)
    trainer.fit()
    assert trainer.step == 2
    assert all(torch.isfinite(p).all() for p in net.parameters())


def _pair(name: str, channels: int, upscale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth target and a degraded input: darker (x0.5), a little noisy, downscaled for SR."""
    g = torch.Generator().manual_seed(1)
    target = F.interpolate(
        torch.rand(2, channels, 4, 4, generator=g), size=(32, 32), mode="bicubic"
    )
    target = target.clamp(0, 1)
    x = F.avg_pool2d(target, upscale) if upscale > 1 else target
    x = 0.5 * x + 0.02 * torch.randn(x.shape, generator=g)
    if name == "unet_inpainter":
        mask = (torch.rand(2, 1, 32, 32, generator=g) < 0.3).float()
        x = torch.cat([x * (1 - mask), mask], 1)
    return x, target


@pytest.mark.parametrize("name", sorted(SMALL))
def test_overfits_one_batch(name):
    model = small(name, 3)
    x, target = _pair(name, 3, model.upscale)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(50):
        loss = F.l1_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_discriminator_learns_and_takes_any_size():
    torch.manual_seed(0)
    disc = models.build("vgg_discriminator", features=8)
    real, fake = torch.rand(4, 3, 64, 64) * 0.5 + 0.5, torch.rand(4, 3, 64, 64) * 0.5
    labels = torch.tensor([1.0] * 4 + [0.0] * 4)[:, None]
    optimizer = torch.optim.Adam(disc.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = F.binary_cross_entropy_with_logits(disc(torch.cat([real, fake])), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert disc.eval()(torch.rand(2, 3, 128, 128)).shape == (2, 1)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bf16_autocast_on_cpu(name):
    model = small(name, 3).eval()
    x = torch.rand(2, model_in_channels(name, 3), 32, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    s = model.upscale
    assert y.shape == (2, 3, 32 * s, 32 * s) and y.dtype.is_floating_point
    assert torch.isfinite(y.float()).all()


def test_inpainter_class_conditioning_and_encoding():
    model = small("unet_inpainter", 3).eval()
    x = torch.rand(3, 4, 40, 36)
    codes = model.encode(x)
    assert codes.shape == (3, model.code_dim) and model.code_dim == 64
    for block in model.decoders:  # FiLM starts at zero: train it a little by hand
        torch.nn.init.normal_(block.film.weight, std=0.5)
    with torch.no_grad():
        a, b = model(x, torch.tensor([0, 0, 0])), model(x, 1)
        assert not torch.allclose(a, b)
        assert torch.allclose(model(x, 0), a)
        assert model(x).shape == (3, 3, 40, 36)  # no class: the learned "no class" embedding
    assert torch.equal(model.encode(x), codes)  # the encoder ignores the class


def test_inpainter_starts_with_its_deep_path_alive():
    """The U-Net paper's initialisation: every encoder level keeps the scale of the first, so the
    bottleneck, the only part that sees a whole large hole, speaks from step 0. PyTorch's default
    init shrinks it about 6x in variance per conv (an RMS ratio of 0.08 at depth 4)."""
    torch.manual_seed(0)
    model = models.build("unet_inpainter", "paper")
    with torch.no_grad():
        features = model._encode(torch.rand(2, 4, 128, 128))
    rms = [float(f.pow(2).mean().sqrt()) for f in features]
    assert min(rms[1:]) / rms[0] > 0.5, rms
    with pytest.raises(ValueError, match="stride = kernel"):
        init_like_unet_paper(torch.nn.ConvTranspose2d(4, 4, 3, stride=2))


# ---------------------------------------------------------------- official checkpoints
# Our names -> the official names, written from the official code (independently of the
# library's official -> ours rules, which the tests below invert).
def _official_rrdb_basicsr(key: str, blocks: int) -> str:
    return key


def _official_rrdb_old(key: str, blocks: int) -> str:
    simple = {"conv_first.": "model.0.", "conv_body.": f"model.1.sub.{blocks}.",
              "conv_up1.": "model.3.", "conv_up2.": "model.6.", "conv_hr.": "model.8.",
              "conv_last.": "model.10."}  # fmt: skip
    for ours, theirs in simple.items():
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    i, r, c, tail = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)", key).groups()
    return f"model.1.sub.{i}.RDB{r}.conv{c}.0.{tail}"


def _official_rrdb_2019(key: str, blocks: int) -> str:
    for ours, theirs in [("body.", "RRDB_trunk."), ("conv_body.", "trunk_conv."),
                         ("conv_up1.", "upconv1."), ("conv_up2.", "upconv2."), ("conv_hr.", "HRconv.")]:  # fmt: skip
        if key.startswith(ours):
            key = theirs + key[len(ours) :]
    return re.sub(r"\.rdb(\d)\.", r".RDB\1.", key)


def _official_msrresnet(key: str, blocks: int) -> str:
    return key.replace("upsampler.0.conv.", "upconv1.").replace("upsampler.1.conv.", "upconv2.")


def _official_restormer(key: str, blocks: int) -> str:
    key = key.replace("patch_embed.", "patch_embed.proj.")
    key = re.sub(r"\.(norm[12])\.", r".\1.body.", key)
    return re.sub(r"^(down\d_\d|up\d_\d)\.", r"\1.body.", key)


def _official_kbnet(key: str, blocks: int) -> str:
    return key.replace(".kba.", ".")


def _official_dncnn(key: str, blocks: int) -> str:
    return key


LAYOUTS = {
    # id: (model name, small model overrides, our key -> official key, official keys to expect)
    "rrdb-basicsr": ("rrdbnet", {"num_blocks": 2}, _official_rrdb_basicsr,
                     ["conv_first.weight", "body.1.rdb3.conv5.bias", "conv_body.weight"]),
    "rrdb-esrgan-old": ("rrdbnet", {"num_blocks": 2}, _official_rrdb_old,
                        ["model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight",
                         "model.1.sub.1.RDB3.conv5.0.bias", "model.1.sub.2.weight",
                         "model.3.weight", "model.6.bias", "model.8.weight", "model.10.bias"]),
    "rrdb-esrgan-2019": ("rrdbnet", {"num_blocks": 2}, _official_rrdb_2019,
                         ["conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight",
                          "RRDB_trunk.1.RDB3.conv5.bias", "trunk_conv.weight", "upconv1.weight",
                          "upconv2.bias", "HRconv.weight", "conv_last.bias"]),
    "msrresnet": ("msrresnet", {"upscale": 4}, _official_msrresnet,
                  ["conv_first.weight", "body.1.conv2.bias", "upconv1.weight", "upconv2.bias",
                   "conv_hr.weight", "conv_last.bias"]),
    "restormer": ("restormer", {}, _official_restormer,
                  ["patch_embed.proj.weight", "encoder_level1.0.norm1.body.weight",
                   "encoder_level1.0.norm1.body.bias", "encoder_level1.0.attn.temperature",
                   "encoder_level1.0.attn.qkv_dwconv.weight", "encoder_level2.0.ffn.dwconv.weight",
                   "down1_2.body.0.weight", "up4_3.body.0.weight", "reduce_chan_level3.weight",
                   "latent.0.ffn.project_in.weight", "refinement.0.norm2.body.weight",
                   "output.weight"]),
    "restormer-biasfree": ("restormer", {"layer_norm_bias": False}, _official_restormer,
                           ["encoder_level1.0.norm1.body.weight"]),
    "restormer-bias": ("restormer", {"bias": True}, _official_restormer,
                       ["patch_embed.proj.weight", "encoder_level1.0.attn.qkv.bias",
                        "encoder_level1.0.ffn.dwconv.bias", "reduce_chan_level2.bias",
                        "output.bias"]),
    "kbnet": ("kbnet", {}, _official_kbnet,
              ["intro.weight", "encoders.0.0.w", "encoders.0.0.b", "encoders.0.0.attgamma",
               "encoders.0.0.ga1", "encoders.0.0.conv2.2.weight", "encoders.0.0.conv211.bias",
               "encoders.0.0.conv21.weight", "encoders.0.0.conv1.weight", "encoders.0.0.sca.1.weight",
               "encoders.0.0.conv11.1.weight", "downs.0.weight", "middle_blks.0.beta",
               "ups.0.0.weight", "decoders.1.0.gamma", "ending.bias"]),
    "dncnn": ("dncnn", {}, _official_dncnn,
              ["model.0.weight", "model.2.weight", "model.3.running_var", "model.11.bias"]),
    "dncnn-merged": ("dncnn", {"batch_norm": False}, _official_dncnn,
                     ["model.0.weight", "model.2.weight", "model.8.bias"]),
}  # fmt: skip

# every tensor name of one official KBBlock_s and one Restormer TransformerBlock ("WithBias")
KBBLOCK_KEYS = {"w", "b", "ga1", "attgamma", "beta", "gamma", "norm1.weight", "norm1.bias",
                "norm2.weight", "norm2.bias", "sca.1.weight", "sca.1.bias"} | {
    f"{conv}.{p}" for conv in ("conv11.0", "conv11.1", "conv1", "conv21", "conv2.0", "conv2.2",
                               "conv211", "conv3", "conv4", "conv5") for p in ("weight", "bias")}  # fmt: skip
RESTORMER_BLOCK_KEYS = {"norm1.body.weight", "norm1.body.bias", "attn.temperature",
                        "attn.qkv.weight", "attn.qkv_dwconv.weight", "attn.project_out.weight",
                        "norm2.body.weight", "norm2.body.bias", "ffn.project_in.weight",
                        "ffn.dwconv.weight", "ffn.project_out.weight"}  # fmt: skip


def _official_state(layout: str, channels: int = 3) -> tuple[torch.nn.Module, dict]:
    name, overrides, to_official, expected = LAYOUTS[layout]
    model = small(name, channels, **overrides)
    with torch.no_grad():  # distinct values everywhere, BN statistics included
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape) + 0.5)
    blocks = overrides.get("num_blocks", 0)
    state = {to_official(k, blocks): v.clone() for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    assert not missing, f"test layout of {layout} lacks official keys {missing}"
    return model, state


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_load_official_round_trip(layout):
    original, state = _official_state(layout, channels=1 if layout.startswith("dncnn") else 3)
    loaded = load_official(LAYOUTS[layout][0], state)  # configuration read off the shapes
    assert type(loaded) is type(original) and not loaded.training
    ours = loaded.state_dict()
    assert ours.keys() == original.state_dict().keys()
    for key, value in original.state_dict().items():
        assert torch.equal(ours[key], value), key
    x = torch.rand(1, model_in_channels(LAYOUTS[layout][0], 1 if "dncnn" in layout else 3), 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), original.eval()(x))


def test_official_block_layouts_are_complete():
    _, kb = _official_state("kbnet")
    assert {
        k.removeprefix("encoders.0.0.") for k in kb if k.startswith("encoders.0.0.")
    } == KBBLOCK_KEYS
    _, rs = _official_state("restormer")
    block = {k.removeprefix("latent.0.") for k in rs if k.startswith("latent.0.")}
    assert block == RESTORMER_BLOCK_KEYS


def test_old_and_basicsr_esrgan_layouts_give_the_same_network():
    reference = load_official("rrdbnet", _official_state("rrdb-basicsr")[1]).state_dict()
    for layout in ("rrdb-esrgan-old", "rrdb-esrgan-2019"):
        loaded = load_official("rrdbnet", _official_state(layout)[1]).state_dict()
        assert loaded.keys() == reference.keys()
        assert all(torch.equal(loaded[k], v) for k, v in reference.items())


def test_load_official_reads_files_and_wrappers(tmp_path):
    original, state = _official_state("msrresnet")
    wrapped = {"params": {f"module.{k}": torch.zeros_like(v) for k, v in state.items()},
               "params_ema": state}  # fmt: skip
    torch.save(wrapped, tmp_path / "msrresnet.pth")
    into = small("msrresnet", 3)  # a given model is loaded in place
    loaded = load_official("msrresnet", tmp_path / "msrresnet.pth", model=into)
    assert loaded is into
    assert torch.equal(loaded.conv_first.weight, original.conv_first.weight)  # EMA preferred
    torch.save({"params": state}, tmp_path / "plain.pth")
    assert load_official("msrresnet", str(tmp_path / "plain.pth")).upscale == 4


def test_load_official_wrong_checkpoint_errors(tmp_path):
    _, msr = _official_state("msrresnet")
    with pytest.raises(ValueError, match="not an official rrdbnet checkpoint"):
        load_official("rrdbnet", msr)
    _, rrdb = _official_state("rrdb-basicsr")  # 2 blocks into a 3-block model
    with pytest.raises(ValueError, match=r"missing keys \(\d+\): body\.2\.rdb1"):
        load_official("rrdbnet", rrdb, model=small("rrdbnet", 3, num_blocks=3))
    rrdb["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys .*extra.weight"):
        load_official("rrdbnet", rrdb)
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_official("kbnet", tmp_path / "notes.pth")
    with pytest.raises(FileNotFoundError):
        load_official("kbnet", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="supported"):
        load_official("srcnn", {})


def test_load_official_tolerates_missing_batch_norm_counters():
    original, state = _official_state("dncnn", channels=1)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    loaded = load_official("dncnn", state)
    assert torch.equal(loaded.model[3].running_var, original.model[3].running_var)


def test_restormer_with_bias_has_the_official_bias_free_patch_embedding():
    _, state = _official_state("restormer-bias")
    assert "patch_embed.proj.bias" not in state  # the official OverlapPatchEmbed(bias=False)
    assert "down1_2.body.0.bias" not in state and "up2_1.body.0.bias" not in state
    assert load_official("restormer", state).patch_embed.bias is None


def _zero_padded_run(model, x, multiple):
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, -w % multiple, 0, -h % multiple))  # zeros at the bottom and right
    return model(padded)[..., :h, :w]


def test_kbnet_pads_with_zeros_as_the_official_code_on_request():
    x = torch.rand(1, 3, 37, 41, generator=torch.Generator().manual_seed(3))
    zeros = small("kbnet", 3, padding="zeros").eval()
    reflect = small("kbnet", 3).eval()
    reflect.load_state_dict(zeros.state_dict())
    with torch.no_grad():
        official = _zero_padded_run(zeros, x, zeros.multiple)
        assert torch.allclose(zeros(x), official, atol=1e-6)
        assert not torch.allclose(reflect(x), official, atol=1e-3)  # the two paddings differ
        even = x[..., :32, :40]  # no padding needed: the two agree
        assert torch.allclose(zeros(even), reflect(even), atol=1e-6)
    with pytest.raises(ValueError, match="padding"):
        small("kbnet", 3, padding="circular")


def test_load_official_kbnet_uses_the_official_zero_padding():
    original, state = _official_state("kbnet")
    loaded = load_official("kbnet", state)
    assert loaded.padding == "zeros"
    x = torch.rand(1, 3, 19, 21)
    with torch.no_grad():
        assert torch.allclose(loaded(x), _zero_padded_run(original.eval(), x, 4), atol=1e-5)


def test_gdfn_ablations_remove_the_gate_or_the_depthwise_conv():
    from restorelab.models.restormer import GDFN

    full, ungated, no_dw = GDFN(8), GDFN(8, gated=False), GDFN(8, depthwise=False)
    hidden = int(8 * 2.66)
    assert full.project_in.out_channels == 2 * hidden and ungated.project_in.out_channels == hidden
    assert isinstance(no_dw.dwconv, torch.nn.Identity)
    assert max(models.count_params(ungated), models.count_params(no_dw)) < models.count_params(full)
    x = torch.rand(1, 8, 5, 6)
    for ffn in (ungated, no_dw):
        assert ffn(x).shape == x.shape
    net = small("restormer", 3, ffn_gated=False)
    assert not net.latent[0].ffn.gated and net(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
