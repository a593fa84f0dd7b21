"""Checks of lab 5 (KBNet): the kernel-basis fusion with ``unfold``, the simple gate, a
configuration under the competition's 10M parameters."""

from __future__ import annotations

from collections.abc import Callable

import torch

from restorelab.checks import run_check

Filter = Callable[..., torch.Tensor]


def check_kba_filter(student: Filter) -> bool:
    """Chapter 5: ``student(x, att, w, b, k, groups)`` equals restorelab's KBA fusion to 1e-5."""
    from restorelab.models.kbnet import kernel_basis_filter

    def check() -> None:
        g = torch.Generator().manual_seed(0)
        n, c, h, w, nset, k, gc = 2, 8, 7, 9, 5, 3, 4
        x = torch.randn(n, c, h, w, generator=g)
        att = torch.randn(n, nset, h, w, generator=g)
        bases = torch.randn(1, nset, c * gc * k * k, generator=g)
        bias = torch.randn(1, nset, c, generator=g)
        got = student(x, att, bases, bias, k, c // gc)
        want = kernel_basis_filter(x, att, bases, bias, k, c // gc)
        assert tuple(got.shape) == tuple(want.shape), (
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)} (N, C, H, W)"
        )
        no_bias = kernel_basis_filter(x, att, bases, torch.zeros_like(bias), k, c // gc)
        assert not torch.allclose(got, no_bias, atol=1e-5), "the fused bias (att @ b) is missing"
        error = float((got - want).abs().max())
        assert error < 1e-5, (
            f"values differ by up to {error:.3g}: each pixel's kernel is att @ w reshaped to "
            "(groups, C/groups out, C/groups in * k * k); unfold's columns are channel-major"
        )

    return run_check("kernel basis fusion", check)


def check_simple_gate(student: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Chapter 5: the first half of the channels times the second half, (N, 2C, H, W) -> (N, C, H, W)."""
    from restorelab.models.layers import SimpleGate

    def check() -> None:
        x = torch.randn(2, 6, 4, 5, generator=torch.Generator().manual_seed(1))
        got, want = student(x), SimpleGate()(x)
        assert tuple(got.shape) == tuple(want.shape), (
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: split the channels (dim 1)"
        )
        assert torch.allclose(got, want, atol=1e-6), "expected x[:, :C] * x[:, C:]"

    return run_check("simple gate", check)


def check_competition_config(make_config: Callable[[], dict]) -> bool:
    """Chapter 5: ``make_config()`` returns KBNet keyword arguments of the student's own (not the
    ``"competition"`` preset, by name or by its numbers) that build a network of 1M to 10M
    parameters."""
    from restorelab import models

    def check() -> None:
        from restorelab.models.kbnet import PRESETS

        config = make_config()
        assert "preset" not in config, "choose the keyword arguments yourself, not a preset"
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        shape = {k: v for k, v in PRESETS["competition"].items() if not k.endswith("_channels")}
        assert any(given.get(k) != v for k, v in shape.items()), (
            "that is the competition preset itself: choose your own configuration"
        )
        try:
            with torch.device("meta"):  # counted without allocating the weights
                count = models.count_params(models.build("kbnet", **config))
        except (TypeError, ValueError) as error:
            raise AssertionError(
                f"KBNet(**config) fails: {error}. Use as many decoder as encoder levels; each "
                "level's width (width x 2**level) must be a multiple of 4, and of 32 above 32 "
                "(width 16, 32 or 64 works)"
            ) from error
        assert count < 10_000_000, f"{count:,} parameters: the competition allows under 10M"
        assert count > 1_000_000, f"{count:,} parameters: use more of the budget (over 1M)"
        print(f"your KBNet: {count:,} parameters")

    return run_check("KBNet under 10M", check)
