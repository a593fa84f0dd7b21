"""Checks of lab 7 (ESRGAN): the RaGAN discriminator loss, WGAN-GP's gradient penalty, network
interpolation. Each compares the student's function with :mod:`restorelab.losses` or
:func:`restorelab.train.interpolate_weights`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from restorelab.checks import run_check
from restorelab.losses import (
    gradient_penalty,
    ragan_discriminator_loss,
    ragan_generator_loss,
    vanilla_discriminator_loss,
)
from restorelab.train import interpolate_weights


def check_ragan_discriminator_loss(
    student: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> bool:
    """Chapter 7: ``0.5 BCE(D(real) - mean D(fake), 1) + 0.5 BCE(D(fake) - mean D(real), 0)``."""

    def check() -> None:
        generator = torch.Generator().manual_seed(0)
        real, fake = torch.randn(6, 1, generator=generator), torch.randn(6, 1, generator=generator)
        got, want = student(real, fake), ragan_discriminator_loss(real, fake)
        assert got.ndim == 0, f"return one number (a 0-d tensor), got shape {tuple(got.shape)}"
        if torch.allclose(got, 2 * want, atol=1e-5):
            raise AssertionError("twice the expected value: weigh the two terms by 0.5")
        if torch.allclose(got, vanilla_discriminator_loss(real, fake), atol=1e-5):
            raise AssertionError("that is the vanilla loss: subtract the *other* side's mean logit")
        if torch.allclose(got, ragan_generator_loss(real, fake), atol=1e-5):
            raise AssertionError("labels swapped: that is the generator's side")
        assert torch.allclose(got, want, atol=1e-5), (
            f"{got.item():.5f}, expected {want.item():.5f} (use logits with "
            "binary_cross_entropy_with_logits, real - fake.mean() labelled 1, "
            "fake - real.mean() labelled 0)"
        )

    return run_check("ragan_discriminator_loss", check)


def check_gradient_penalty(
    student: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
) -> bool:
    """Chapter 7: ``mean((||grad D(x_hat)|| - 1)^2)`` at random mixes, the graph kept."""

    def check() -> None:
        critic = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        torch.manual_seed(0)
        for layer in critic:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=1.0)
        real = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
        fake = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
        got = student(critic, real, fake, torch.Generator().manual_seed(3))
        want = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(3))
        assert got.ndim == 0, f"return one number (a 0-d tensor), got shape {tuple(got.shape)}"
        assert torch.allclose(got, want, atol=1e-5), (
            f"{got.item():.5f}, expected {want.item():.5f}: one mixing weight per sample, "
            "torch.rand((N, 1), generator=generator); the norm per sample, then (norm - 1)^2"
        )
        assert got.requires_grad, (
            "no gradient reaches the critic's weights: pass create_graph=True to autograd.grad"
        )
        got.backward()
        assert critic[0].weight.grad is not None, "no gradient reaches the critic's weights"

    return run_check("gradient_penalty", check)


def check_interpolation(
    student: Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor], float], dict],
) -> bool:
    """Chapter 7: ``(1 - alpha) * psnr + alpha * gan`` for every weight."""

    def check() -> None:
        generator = torch.Generator().manual_seed(0)
        psnr = {"conv.weight": torch.randn(4, 3, generator=generator), "conv.bias": torch.zeros(4)}
        gan = {"conv.weight": torch.randn(4, 3, generator=generator), "conv.bias": torch.ones(4)}
        for alpha in (0.3, 0.0, 1.0):
            got, want = student(psnr, gan, alpha), interpolate_weights(psnr, gan, alpha)
            assert set(got) == set(want), f"keys {sorted(got)}, expected {sorted(want)}"
            for name in want:
                if alpha == 0.3 and torch.allclose(
                    got[name], interpolate_weights(psnr, gan, 0.7)[name]
                ):
                    raise AssertionError("alpha = 0 must give the PSNR network, 1 the GAN one")
                assert torch.allclose(got[name], want[name]), f"{name} at alpha {alpha} differs"

    return run_check("interpolate", check)
