"""Losses: pixel losses, the VGG perceptual loss and the GAN losses of both players.

Taught in chapter 7 (GAN / ESRGAN); L1 and L2 since chapter 1, as BasicSR keeps its losses apart
from the architectures. Every loss takes float tensors (N, C, H, W) of the same shape (images in
[0, 1]) or, for the GAN losses, the discriminator's logits (N, 1) or (N,), and returns a scalar.

* Pixel losses: :func:`l1_loss`, :func:`l2_loss`, :func:`charbonnier_loss` (by name in
  :data:`PIXEL_LOSSES`): the mean over all elements.
* :class:`PerceptualLoss`: L1 (or L2) between VGG19 features of output and target, summed over
  layers with weights (:data:`PERCEPTUAL_LAYERS`: ESRGAN's ``conv5_4``, Real-ESRGAN's five layers),
  features taken *before* the ReLU as ESRGAN prescribes.
* GAN losses, each a pair (discriminator side, generator side) of functions of the logits on
  real and on fake images (by name in :data:`GAN_LOSSES`): ``vanilla`` (BCE; the generator's
  non-saturating form), ``minimax`` (BCE with the original saturating generator side), ``lsgan`` (least squares), ``wgan-gp`` (Wasserstein; add
  :func:`gradient_penalty` on the discriminator side) and ``ragan`` (ESRGAN's relativistic
  average GAN). The discriminator side is minimised by the discriminator, the generator side by
  the generator; both get both logits (only RaGAN's generator needs the real ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from restorelab.backbones import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, vgg19_features


# --------------------------------------------------------------------------------- pixel losses
def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: its minimiser is the per-pixel *median* of the plausible targets."""
    return F.l1_loss(pred, target)


def l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error: its minimiser is the per-pixel *mean* of the plausible targets."""
    return F.mse_loss(pred, target)


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)^2 + eps^2)``: L1 with a smooth minimum (LapSRN's eps 1e-3)."""
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


PIXEL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1_loss,
    "l2": l2_loss,
    "charbonnier": charbonnier_loss,
}


class WeightedSum(nn.Module):
    """``sum(weight * loss(pred, target))`` over named terms: ESRGAN's content loss is
    ``WeightedSum(l1=(1e-2, l1_loss), perceptual=(1.0, PerceptualLoss()))``. Loss modules among
    the terms are submodules (``.to(device)`` moves them)."""

    def __init__(self, **terms: tuple[float, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]):
        super().__init__()
        if not terms:
            raise ValueError("WeightedSum needs at least one (weight, loss) term")
        self.weights = {name: float(weight) for name, (weight, _) in terms.items()}
        self.terms = {name: loss for name, (_, loss) in terms.items()}
        self.loss_modules = nn.ModuleDict(
            {name: loss for name, loss in self.terms.items() if isinstance(loss, nn.Module)}
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * self.terms[name](pred, target) for name, w in self.weights.items())


# ---------------------------------------------------------------------------- perceptual loss
# layer -> weight, as the papers' training configurations use them (VGG19, before the ReLU)
PERCEPTUAL_LAYERS: dict[str, dict[str, float]] = {
    "esrgan": {"conv5_4": 1.0},  # ESRGAN: the last conv of VGG19, before its activation
    "real-esrgan": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
}


class PerceptualLoss(nn.Module):
    """Sum over layers of ``weight * criterion(VGG19 features of pred, of target)``.

    ``layers``: a key of :data:`PERCEPTUAL_LAYERS` or a dict {layer: weight} with layer names of
    :data:`restorelab.backbones.VGG19_LAYERS` (``conv`` layers give features before the
    activation, ``relu`` layers after it, as SRGAN did). Inputs (N, 3, H, W) in [0, 1] are
    normalised with ImageNet's mean and std, as torchvision's VGG19 expects. The target's
    features carry no gradient; the VGG is frozen.

    ``pretrained=False`` uses a random VGG19 (tests only): its value is not a VGG loss, and
    :attr:`label` says so.
    """

    def __init__(
        self,
        layers: str | Mapping[str, float] = "esrgan",
        criterion: str = "l1",
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        weights = PERCEPTUAL_LAYERS[layers] if isinstance(layers, str) else dict(layers)
        unknown = [name for name in weights if name not in VGG19_LAYERS]
        if unknown or not weights:
            raise ValueError(f"unknown VGG19 layers {unknown}; layers: {', '.join(VGG19_LAYERS)}")
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be l1 or l2, got {criterion!r}")
        self.layer_weights = weights
        self.criterion = PIXEL_LOSSES[criterion]
        self.pretrained = pretrained
        last = max(weights, key=VGG19_LAYERS.index)
        self.features = vgg19_features(pretrained, until=last)
        self._taps = {VGG19_LAYERS.index(name): name for name in weights}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @property
    def label(self) -> str:
        """How to name this loss's values: a random backbone's are not a VGG loss."""
        if self.pretrained:
            return "VGG19 perceptual loss"
        return "random-VGG19 stand-in (not a VGG loss)"

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{layer: features} of images (N, 3, H, W) in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got {tuple(images.shape)}")
        feat, taken = (images - self.mean) / self.std, {}
        for index, layer in enumerate(self.features):
            feat = layer(feat)
            if index in self._taps:
                taken[self._taps[index]] = feat
        return taken

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        mine = self.extract(pred)
        with torch.no_grad():
            theirs = self.extract(target)
        return sum(w * self.criterion(mine[n], theirs[n]) for n, w in self.layer_weights.items())


# --------------------------------------------------------------------------------- GAN losses
def _bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def vanilla_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``BCE(D(real), 1) + BCE(D(fake), 0)`` (Goodfellow et al. 2014), on logits."""
    return _bce(real, 1.0) + _bce(fake, 0.0)


def vanilla_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``BCE(D(fake), 1)``: the non-saturating form (``-log D(fake)``). ``real`` is unused."""
    return _bce(fake, 1.0)


def minimax_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``-BCE(D(fake), 0) = mean log(1 - D(fake))``: the original, *saturating* minimax form.

    When the discriminator rejects the fakes confidently, ``D(fake)`` is near 0 and this loss is
    flat: the generator gets almost no gradient (why Goodfellow et al. proposed the
    non-saturating form). Kept to show that failure. ``real`` is unused.
    """
    return -_bce(fake, 0.0)


def lsgan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``0.5 mean((D(real) - 1)^2) + 0.5 mean(D(fake)^2)`` (Mao et al. 2017)."""
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``0.5 mean((D(fake) - 1)^2)``. ``real`` is unused."""
    return 0.5 * ((fake - 1) ** 2).mean()


def wgan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The critic's ``mean(D(fake)) - mean(D(real))`` (Arjovsky et al. 2017); add
    :func:`gradient_penalty` for WGAN-GP (Gulrajani et al. 2017)."""
    return fake.mean() - real.mean()


def wgan_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``-mean(D(fake))``. ``real`` is unused."""
    return -fake.mean()


def ragan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average discriminator: is a real image *more* realistic than the
    average fake, and a fake less than the average real?

    ``0.5 BCE(D(real) - mean D(fake), 1) + 0.5 BCE(D(fake) - mean D(real), 0)``.
    """
    return 0.5 * _bce(real - fake.mean(), 1.0) + 0.5 * _bce(fake - real.mean(), 0.0)


def ragan_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The symmetric generator side: ``0.5 BCE(D(real) - mean D(fake), 0) + 0.5 BCE(D(fake) -
    mean D(real), 1)``; the generator gets gradient from real images too (through the mean)."""
    return 0.5 * _bce(real - fake.mean(), 0.0) + 0.5 * _bce(fake - real.mean(), 1.0)


class GANLoss(NamedTuple):
    """The two sides of a GAN loss, each ``(logits on real, logits on fake) -> scalar``."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


GAN_LOSSES: dict[str, GANLoss] = {
    "vanilla": GANLoss(vanilla_discriminator_loss, vanilla_generator_loss),
    "minimax": GANLoss(vanilla_discriminator_loss, minimax_generator_loss),
    "lsgan": GANLoss(lsgan_discriminator_loss, lsgan_generator_loss),
    "wgan-gp": GANLoss(wgan_discriminator_loss, wgan_generator_loss),
    "ragan": GANLoss(ragan_discriminator_loss, ragan_generator_loss),
}


def gan_loss(name: str) -> GANLoss:
    """The pair of :data:`GAN_LOSSES` called ``name``, or a ValueError listing them."""
    if name not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; known: {', '.join(GAN_LOSSES)}")
    return GAN_LOSSES[name]


def gradient_penalty(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty ``mean((||grad_x D(x)||_2 - 1)^2)`` at random points between real and
    fake samples (one mixing weight per sample, uniform in [0, 1], drawn with ``generator``).

    ``real``, ``fake``: (N, ...) of the same shape; ``fake`` is detached. The result keeps the
    graph (``create_graph``), so its gradient reaches the discriminator's weights. Multiply it by
    the penalty weight (10 in the paper).
    """
    if real.shape != fake.shape:
        raise ValueError(f"shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    mix = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    points = (mix * real.detach() + (1 - mix) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(points).sum(), points, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
