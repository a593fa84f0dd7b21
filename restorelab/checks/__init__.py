"""Check cells of the labs: compare a student's answer with restorelab's own implementation.

One module per lab (``ch01``, ...), imported by that lab as ``from restorelab.checks import ch01
as checks``. A check whose exercise is still a stub prints "not done yet" instead of failing, so a
lab runs top to bottom before any exercise is done; a wrong answer raises an AssertionError that
says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def run_check(name: str, check: Callable[[], None]) -> bool:
    """Run ``check``; True when it passes, False when the exercise still raises NotImplementedError."""
    try:
        check()
    except NotImplementedError:
        print(f"[ ] {name}: not done yet (the exercise still raises NotImplementedError)")
        return False
    print(f"[x] {name}: correct")
    return True


def check_same_size_network(
    name: str, student_class: type[nn.Module], params: int, layout: str
) -> bool:
    """A one-channel network (chapters 1-2) with ``params`` parameters that keeps the image size.

    ``layout`` describes the expected layers in the message of a wrong count.
    """

    def check() -> None:
        from restorelab.models import count_params

        model = student_class()
        count = count_params(model)
        assert count == params, f"{count:,} parameters, expected {params:,} ({layout})"
        out = model(torch.rand(1, 1, 40, 36))
        assert tuple(out.shape) == (1, 1, 40, 36), (
            f"output {tuple(out.shape)}: pad to keep the size"
        )

    return run_check(name, check)
