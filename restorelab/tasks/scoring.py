"""What every task shares: the channel setting, and the evaluation loop (degrade, restore, score).

Taught in chapter 1; each task (:mod:`restorelab.tasks`) supplies the three steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from restorelab import metrics


def score_images(
    images: Sequence[torch.Tensor],
    degraded: Sequence[torch.Tensor] | None,
    degrade: Callable[[torch.Tensor, int], torch.Tensor],
    restore: Callable[[torch.Tensor], torch.Tensor],
    score: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
) -> dict[str, list[float]]:
    """Per-image scores: ``score(restore(input_i), image_i)`` for every image.

    ``input_i`` is ``degraded[i]`` when given (e.g. benchmark LR files), else
    ``degrade(image_i, i)``. Returns ``{metric: [one value per image]}``.
    """
    scores: dict[str, list[float]] = {}
    for i, clean in enumerate(images):
        x = degrade(clean, i) if degraded is None else degraded[i]
        for key, value in score(restore(x), clean).items():
            scores.setdefault(key, []).append(value)
    return scores


class ChannelSetting:
    """Mixin for task dataclasses with a ``channels`` field: one channel or ``"rgb"``.

    ``one_channel`` names the one-channel setting (``"y"`` for SR and JPEG, ``"grey"`` for
    denoising). ``check()`` is where a task refuses settings it cannot use (called on creation).
    """

    one_channel = "y"

    def __post_init__(self) -> None:
        allowed = (self.one_channel, "rgb")
        if self.channels not in allowed:
            raise ValueError(f"channels must be one of {allowed}, got {self.channels!r}")
        self.check()

    def check(self) -> None:
        """Raise ValueError naming a setting out of its range (tasks override this)."""

    @property
    def min_size(self) -> int:
        """The smallest image side this task can score (SSIM's 11x11 window must fit)."""
        return metrics.WINDOW

    @property
    def model_channels(self) -> int:
        """Channels the model takes and returns."""
        return 1 if self.channels == self.one_channel else 3
