"""Restoration tasks: how a clean image becomes a training pair, and how a model is judged.

One module per task: ``sr`` (super-resolution, chapters 1 and 4), ``jpeg`` (JPEG artefact
removal, chapter 2), ``denoise`` (Gaussian denoising, chapter 3), ``inpaint`` (inpainting with a class input,
chapter 8; not in ``TASKS``: its batches carry a class). A task turns a batch of clean
patches into ``(model input, target)`` on the device, batched (so the Trainer never waits for
per-sample CPU work), restores whole images, and evaluates with the course's metric conventions.
``TASKS`` maps the names the command line uses to the task classes; every task is a dataclass
following the :class:`Task` protocol, so :mod:`restorelab.experiment` can train and evaluate
any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from restorelab.tasks.denoise import Denoising
from restorelab.tasks.inpaint import Inpainting
from restorelab.tasks.jpeg import JPEGArtifacts
from restorelab.tasks.sr import SuperResolution


class Task(Protocol):
    """What the Trainer, the experiments and the command line need from a task."""

    monitor: str  # the validation score that picks best.pt (see TrainConfig.monitor)

    @property
    def model_channels(self) -> int: ...  # channels the model takes and returns

    @property
    def min_size(self) -> int: ...  # the smallest image side the task can score

    def make_pair(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...  # clean batch (N, C, P, P) -> (input, target)

    def evaluate(
        self,
        model: nn.Module | None,
        images: Sequence[torch.Tensor],
        degraded: Sequence[torch.Tensor] | None = None,
        **predict_kwargs,
    ) -> dict[str, list[float]]: ...  # per-image scores; model None scores the baseline


TASKS: dict[str, type] = {"sr": SuperResolution, "jpeg": JPEGArtifacts, "denoise": Denoising}

__all__ = ["TASKS", "Denoising", "Inpainting", "JPEGArtifacts", "SuperResolution", "Task"]
