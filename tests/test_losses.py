"""restorelab.losses against values computed by hand on small tensors.

The perceptual loss runs on a random VGG19 here (no weights can be downloaded in CI): its values
test the mechanics (layers, normalisation, activation), they are not a VGG loss.
"""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch
from torch import nn

from restorelab import losses
from restorelab.backbones import IMAGENET_MEAN, IMAGENET_STD


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


LN2 = math.log(2)
PRED, TARGET = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])


def test_pixel_losses_by_hand():
    assert losses.l1_loss(PRED, TARGET).item() == pytest.approx(1.0)
    assert losses.l2_loss(PRED, TARGET).item() == pytest.approx(5 / 3)
    want = (math.sqrt(2) + 1 + math.sqrt(5)) / 3  # sqrt(d^2 + eps^2) with eps = 1
    assert losses.charbonnier_loss(PRED, TARGET, eps=1.0).item() == pytest.approx(want)
    assert losses.charbonnier_loss(PRED, TARGET).item() == pytest.approx(1.0, abs=1e-3)
    assert set(losses.PIXEL_LOSSES) == {"l1", "l2", "charbonnier"}


def test_weighted_sum_adds_its_terms():
    perceptual = losses.PerceptualLoss({"conv1_2": 1.0}, pretrained=False)
    content = losses.WeightedSum(l1=(1e-2, losses.l1_loss), perceptual=(2.0, perceptual))
    pred, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    want = 1e-2 * losses.l1_loss(pred, target) + 2.0 * perceptual(pred, target)
    assert content(pred, target).item() == pytest.approx(want.item())
    assert list(content.loss_modules) == ["perceptual"]  # moved with .to(device)


REAL, FAKE = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [2.0]])  # logits, means 2 and 1


@pytest.mark.parametrize(
    "name, discriminator, generator",
    [
        # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
        ("vanilla", (softplus(-1) + softplus(-3)) / 2 + (LN2 + softplus(2)) / 2,
         (LN2 + softplus(-2)) / 2),
        ("minimax", (softplus(-1) + softplus(-3)) / 2 + (LN2 + softplus(2)) / 2,
         -(LN2 + softplus(2)) / 2),
        ("lsgan", 0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2, 0.5 * (1 + 1) / 2),
        ("wgan-gp", 1 - 2, -1.0),
        # real - mean(fake) = [0, 2], fake - mean(real) = [-2, 0]
        ("ragan", 0.5 * (LN2 + softplus(-2)) / 2 + 0.5 * (softplus(-2) + LN2) / 2,
         0.5 * (LN2 + softplus(2)) / 2 + 0.5 * (softplus(2) + LN2) / 2),
    ],
)  # fmt: skip
def test_gan_losses_by_hand(name, discriminator, generator):
    pair = losses.gan_loss(name)
    assert pair.discriminator(REAL, FAKE).item() == pytest.approx(discriminator)
    assert pair.generator(REAL, FAKE).item() == pytest.approx(generator)


def test_unknown_gan_loss_lists_the_known_ones():
    with pytest.raises(ValueError, match="ragan"):
        losses.gan_loss("hinge")


def test_discriminator_side_rewards_telling_apart_and_generator_side_fooling():
    for name, pair in losses.GAN_LOSSES.items():
        sure = pair.discriminator(torch.full((4, 1), 5.0), torch.full((4, 1), -5.0))
        fooled = pair.discriminator(torch.full((4, 1), -5.0), torch.full((4, 1), 5.0))
        assert sure < fooled, name
        ones = torch.ones(2, 1)
        assert pair.generator(REAL, ones) < pair.generator(REAL, -ones), name


def test_only_ragan_generator_learns_from_the_real_logits():
    for name, pair in losses.GAN_LOSSES.items():
        real, fake = REAL.clone().requires_grad_(), FAKE.clone().requires_grad_()
        pair.generator(real, fake).backward()
        assert fake.grad.abs().sum() > 0, name
        from_real = real.grad is not None and real.grad.abs().sum() > 0
        assert from_real == (name == "ragan"), name


def test_gradient_penalty_of_a_linear_critic():
    critic = nn.Linear(2, 1, bias=False)  # D(x) = 3 x0 + 4 x1: gradient norm 5 everywhere
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.rand(6, 2), torch.rand(6, 2).requires_grad_()
    penalty = losses.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((5 - 1) ** 2)
    penalty.backward()  # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(critic.weight.grad, torch.tensor([[4.8, 6.4]]))
    assert fake.grad is None  # the penalty trains the critic only
    unit = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[0.6, 0.8]]))
    assert losses.gradient_penalty(unit, real, fake).item() == pytest.approx(0, abs=1e-10)


def _first_conv_passes_input(loss: losses.PerceptualLoss) -> None:
    """conv1_1 copies normalised channel c to output channel c (c < 3); the rest read zero."""
    conv = loss.features[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0


def test_perceptual_loss_normalises_and_taps_before_the_activation():
    before = losses.PerceptualLoss({"conv1_1": 1.0}, pretrained=False)
    after = losses.PerceptualLoss({"relu1_1": 1.0}, pretrained=False)
    for loss in (before, after):
        _first_conv_passes_input(loss)
    pred, target = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    # normalised: pred -> -mean/std < 0 (the ReLU zeroes it), target -> (0.5 - mean)/std > 0
    want_before = sum(0.5 / s for s in IMAGENET_STD) / 64  # L1 mean over 64 channels
    want_after = sum((0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)) / 64
    assert before(pred, target).item() == pytest.approx(want_before, rel=1e-5)
    assert after(pred, target).item() == pytest.approx(want_after, rel=1e-5)


def test_perceptual_loss_presets_sum_their_layers():
    torch.manual_seed(0)
    combined = losses.PerceptualLoss("real-esrgan", pretrained=False)
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    single = losses.PerceptualLoss({"conv3_4": 1.0}, pretrained=False)
    single.features.load_state_dict(combined.features[: len(single.features)].state_dict())
    features = combined.extract(pred), combined.extract(target)
    want = sum(w * (features[0][n] - features[1][n]).abs().mean()
               for n, w in losses.PERCEPTUAL_LAYERS["real-esrgan"].items())  # fmt: skip
    assert combined(pred, target).item() == pytest.approx(want.item(), rel=1e-5)
    assert single(pred, target).item() == pytest.approx(
        (features[0]["conv3_4"] - features[1]["conv3_4"]).abs().mean().item(), rel=1e-5
    )
    assert len(losses.PerceptualLoss("esrgan", pretrained=False).features) == 35  # to conv5_4


def test_perceptual_loss_trains_the_output_only():
    loss = losses.PerceptualLoss({"conv2_2": 1.0}, criterion="l2", pretrained=False)
    assert "not a VGG loss" in loss.label
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    target = torch.rand(1, 3, 8, 8, requires_grad=True)
    value = loss(pred, target)
    value.backward()
    assert pred.grad.abs().sum() > 0 and target.grad is None
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    assert loss(target, target).item() == 0.0
    with pytest.raises(ValueError, match="unknown VGG19 layers"):
        losses.PerceptualLoss({"conv6_1": 1.0}, pretrained=False)


def test_missing_vgg_weights_say_which_file_and_where(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError) as error:
        losses.PerceptualLoss()
    message = str(error.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message


def test_pretrained_vgg_weights_land_in_their_layers(monkeypatch):
    from torchvision.models import vgg19

    from restorelab import backbones

    torch.manual_seed(0)
    full = vgg19(weights=None)  # stands in for the ImageNet file
    monkeypatch.setattr(backbones, "load_weights", lambda weights: full.state_dict())
    loss = losses.PerceptualLoss("esrgan")
    assert loss.label == "VGG19 perceptual loss"
    for index in (0, 16, 34):  # conv1_1, conv3_4, conv5_4
        assert torch.equal(loss.features[index].weight, full.features[index].weight)
