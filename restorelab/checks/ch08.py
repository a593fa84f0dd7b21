"""Checks of lab 8 (the clustered inpainter): the composite of an inpainting, the number of
clusters HDBSCAN's labels decide, and the plateau rule of the learning rate. Each compares the
student's answer with :mod:`restorelab.tasks.inpaint`, :func:`restorelab.cluster.count_clusters`
or :class:`restorelab.train.config.Plateau`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from restorelab.checks import run_check
from restorelab.cluster import count_clusters
from restorelab.train.config import Plateau


def check_composite(
    student: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> bool:
    """Chapter 8: ``damaged * (1 - mask) + output * mask`` (mask 1 = missing)."""

    def check() -> None:
        generator = torch.Generator().manual_seed(0)
        damaged, output = (torch.rand(2, 3, 8, 8, generator=generator) for _ in range(2))
        mask = (torch.rand(2, 1, 8, 8, generator=generator) < 0.3).float()
        got = student(damaged, mask, output)
        assert tuple(got.shape) == (2, 3, 8, 8), f"shape {tuple(got.shape)}, expected (2, 3, 8, 8)"
        if torch.allclose(got, damaged * mask + output * (1 - mask)):
            raise AssertionError("mask swapped: 1 marks the *missing* pixels, filled from output")
        if torch.allclose(got, output):
            raise AssertionError(
                "the known pixels must come from the damaged image, not the output"
            )
        assert torch.allclose(got, damaged * (1 - mask) + output * mask), (
            "keep the damaged image where mask is 0 and take the output where mask is 1"
        )

    return run_check("composite", check)


def check_count_clusters(student: Callable[[np.ndarray], int]) -> bool:
    """Chapter 8: the clusters HDBSCAN found, noise (-1) not counted, at least 1."""

    cases: Sequence[list[int]] = (
        [0, 0, 1, 1, 2],
        [0, 1, -1, -1, 1],
        [2, 0, 0, 1, -1],
        [-1, -1, -1],
    )

    def check() -> None:
        for labels in cases:
            got, want = int(student(np.array(labels))), count_clusters(labels)
            if -1 in labels and got == len(set(labels)) and got != want:
                raise AssertionError(f"labels {labels}: -1 is HDBSCAN's noise, not a cluster")
            if set(labels) == {-1} and got == 0:
                raise AssertionError("all noise: KMeans still needs k >= 1 (every image one class)")
            assert got == want, f"labels {labels}: {got} clusters, expected {want}"

    return run_check("count_clusters", check)


def check_plateau(student_class: type) -> bool:
    """Chapter 8: ``student_class(gamma, patience)`` with ``step(score) -> bool`` (True when it
    cuts) and ``scale``, deciding as :class:`restorelab.train.config.Plateau`."""

    scores = (1.0, 2.0, 2.0, 1.5, 2.0, 2.5, 2.4, 2.4, 2.4, 2.6, 2.6, 2.6, 2.6)

    def check() -> None:
        mine, reference = student_class(0.5, 3), Plateau(0.5, 3)
        for k, score in enumerate(scores):
            got, want = bool(mine.step(score)), reference.step(score)
            if got != want:
                hint = ("too late: cut when the count of validations without progress *reaches* "
                        "patience" if want else "too early: count only validations without a new best")  # fmt: skip
                raise AssertionError(
                    f"validation {k + 1} (scores {list(scores[: k + 1])}): cut={got}, expected "
                    f"{want}: {hint}; reset the count after a new best and after a cut"
                )
            assert abs(mine.scale - reference.scale) < 1e-12, (
                f"after validation {k + 1} the scale is {mine.scale}, expected {reference.scale}"
            )

    return run_check("plateau", check)
