"""Checks of lab 6 (Restormer): MDTA's transposed attention, the gated-Dconv feed-forward
network, the progressive-learning schedule."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from restorelab.checks import run_check


def check_transposed_attention(student: Callable[..., torch.Tensor]) -> bool:
    """Chapter 6: ``student(q, k, v, temperature)`` on (N, heads, C/heads, H*W) tokens gives
    MDTA's attention output: L2-normalised q and k, ``q k^T * temperature``, softmax, times v."""
    from restorelab.models.restormer import MDTA

    def check() -> None:
        torch.manual_seed(0)
        n, c, heads, h, w = 2, 8, 2, 5, 6
        mdta = MDTA(c, heads)
        with torch.no_grad():
            mdta.temperature.copy_(torch.tensor([0.5, 2.0]).view(heads, 1, 1))
            x = torch.randn(n, c, h, w)
            q, k, v = mdta.qkv_dwconv(mdta.qkv(x)).chunk(3, dim=1)
            q, k, v = (t.reshape(n, heads, c // heads, h * w) for t in (q, k, v))
            got = student(q, k, v, mdta.temperature)
            assert tuple(got.shape) == (n, heads, c // heads, h * w), (
                f"shape {tuple(got.shape)}, expected {(n, heads, c // heads, h * w)}: one output "
                "token per channel of each head"
            )
            out = mdta.project_out(got.reshape(n, c, h, w))
            want = mdta(x)
            plain = torch.softmax(q @ k.transpose(-2, -1) * mdta.temperature, -1) @ v
            assert not torch.allclose(got, plain, atol=1e-4), (
                "normalise q and k along the pixels (F.normalize(..., dim=-1)) first"
            )
            error = float((out - want).abs().max())
            assert error < 1e-5, (
                f"differs from MDTA by up to {error:.3g} (temperature per head? softmax over the "
                "last dimension?)"
            )

    return run_check("transposed attention", check)


def check_gdfn(student_class: type[nn.Module]) -> bool:
    """Chapter 6: ``student_class(dim, expansion)`` with ``project_in``, ``dwconv``,
    ``project_out`` (bias-free) computes ``project_out(GELU(a) * b)`` like restorelab's GDFN."""
    from restorelab.models.restormer import GDFN

    def check() -> None:
        torch.manual_seed(0)
        dim, expansion = 8, 2.66
        mine, theirs = student_class(dim, expansion), GDFN(dim, expansion)
        mine_shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        want_shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        assert mine_shapes == want_shapes, (
            f"parameters {mine_shapes}, expected {want_shapes} (hidden = int(dim * expansion); "
            "the 1x1 conv makes 2 * hidden channels; the depthwise conv has groups = its channels)"
        )
        mine.load_state_dict(theirs.state_dict())
        x = torch.randn(2, dim, 6, 7)
        with torch.no_grad():
            error = float((mine(x) - theirs(x)).abs().max())
        assert error < 1e-5, f"output differs by up to {error:.3g}: GELU on the first half only"

    return run_check("GDFN", check)


def check_progressive_schedule(student: Callable[[int], tuple[int, int]]) -> bool:
    """Chapter 6: ``student(step)`` gives the (patch, batch) of Restormer's schedule scaled to
    300 steps: patches 128, 160, 192, 256, 320, 384 with batches 8, 5, 4, 2, 1, 1."""
    from restorelab.train.sampling import progressive_phase

    phases = ((0, 128, 8), (92, 160, 5), (156, 192, 4), (204, 256, 2), (240, 320, 1),
              (276, 384, 1))  # fmt: skip

    def check() -> None:
        for step in range(300):
            got, want = tuple(student(step)), progressive_phase(phases, step)
            assert got == want, f"step {step}: {got}, expected (patch, batch) {want}"

    return run_check("progressive schedule", check)
