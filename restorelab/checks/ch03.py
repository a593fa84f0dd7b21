"""Checks of lab 3 (DnCNN): Gaussian noise, the residual network, the [-1, 1] post-processing."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from restorelab.checks import run_check


def check_gaussian_noise(
    student: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor],
) -> bool:
    """Chapter 3: ``clean + N(0, (sigma/255)^2)``, same shape, not clipped, input untouched."""

    def check() -> None:
        clean = torch.full((1, 64, 64), 0.02)
        before = clean.clone()
        noisy = student(clean, 25, torch.Generator().manual_seed(0))
        assert torch.equal(clean, before), "the clean image was modified: return a new tensor"
        assert tuple(noisy.shape) == tuple(clean.shape), (
            f"shape {tuple(noisy.shape)}, expected {tuple(clean.shape)}"
        )
        noise = (noisy - clean) * 255
        assert float(noisy.min()) < 0, "values below 0 are missing: the noise must not be clipped"
        std = float(noise.std())
        assert abs(std - 25) < 1.5, (
            f"noise std {std:.2f} on the 0-255 scale, expected 25 (sigma is on 0-255: divide by 255)"
        )
        assert abs(float(noise.mean())) < 1.5, f"noise mean {float(noise.mean()):.2f}, expected 0"
        again = student(clean, 25, torch.Generator().manual_seed(0))
        assert torch.equal(noisy, again), (
            "draw the noise from the given generator (same seed, same noise)"
        )
        if torch.cuda.is_available():  # training hands over a batch and a generator on the GPU
            try:
                on_gpu = student(clean.cuda(), 25, torch.Generator("cuda").manual_seed(0))
            except RuntimeError as error:
                raise AssertionError(
                    f"on the GPU: {error}; draw the noise on the image's device "
                    "(torch.randn(..., device=clean.device))"
                ) from None
            assert on_gpu.device.type == "cuda", "return the noisy image on the clean one's device"

    return run_check("add_gaussian_noise", check)


def check_dncnn(student_class: type[nn.Module]) -> bool:
    """Chapter 3: ``MyDnCNN(depth, features)`` matches restorelab's DnCNN and returns ``x - f(x)``."""
    from restorelab import models

    def check() -> None:
        depth, features = 5, 8
        mine = student_class(depth, features)
        reference = models.build("dncnn", "paper", depth=depth, features=features)
        count, want = models.count_params(mine), models.count_params(reference)
        assert count == want, (
            f"{count:,} parameters for depth={depth}, features={features}, expected {want:,}: "
            "Conv+ReLU, then depth-2 times Conv+BatchNorm+ReLU, then Conv (3x3, with biases)"
        )
        assert sum(isinstance(m, nn.BatchNorm2d) for m in mine.modules()) == depth - 2, (
            f"expected {depth - 2} BatchNorm2d layers (none after the first and last conv)"
        )
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for a, b in zip(mine.parameters(), reference.parameters(), strict=True):
                assert a.shape == b.shape, (
                    f"a tensor of shape {tuple(a.shape)} where {tuple(b.shape)} was expected (layer order?)"
                )
                b.copy_(0.3 * torch.randn(b.shape, generator=gen))
                a.copy_(b)
            mine.eval(), reference.eval()
            x = torch.rand(2, 1, 12, 10, generator=gen)
            got, want_out = mine(x), reference(x)
            assert tuple(got.shape) == tuple(x.shape), (
                f"output {tuple(got.shape)}: pad to keep the size"
            )
            if torch.allclose(got, x - want_out, atol=1e-4):
                raise AssertionError("the output is the noise f(x): return x - f(x), the residual")
            assert torch.allclose(got, want_out, atol=1e-4), (
                "the output differs from x - f(x) of restorelab's DnCNN (layer order? padding?)"
            )

    return run_check("MyDnCNN", check)


def check_denormalise(student: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Chapter 3: a [-1, 1] network output -> an image in [0, 1]: denormalise, then clamp."""

    def check() -> None:
        out = torch.linspace(-1.2, 1.2, 25).reshape(1, 5, 5)
        got = student(out.clone())
        want = ((out + 1) / 2).clamp(0, 1)
        if torch.allclose(got, out.clamp(0, 1)):
            raise AssertionError(
                "you clamp the [-1, 1] output to [0, 1] without denormalising: everything darker "
                "than mid-grey turns black"
            )
        if torch.allclose(got, (out.clamp(0, 1) + 1) / 2):
            raise AssertionError("you clamp before denormalising: the image only spans [0.5, 1]")
        assert float(got.min()) >= 0 and float(got.max()) <= 1, "clamp the result to [0, 1]"
        assert torch.allclose(got, want, atol=1e-6), "expected (x + 1) / 2, clamped to [0, 1]"

    return run_check("denormalise_then_clamp", check)
