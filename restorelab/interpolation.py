"""ESRGAN's network interpolation scored on both axes of the perception-distortion plane.

Taught in chapter 7: blending the PSNR model's weights into the GAN model's
(:func:`restorelab.train.interpolate_weights`) moves along the trade-off; each blend is scored
by its Y-PSNR (distortion), its NIQE (no reference, works offline, :mod:`restorelab.niqe`) and,
where AlexNet's weights exist, its LPIPS to the ground truth. The chapter and the reference run
(``scripts/train_references.py``) use the same two functions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from restorelab.niqe import niqe
from restorelab.tasks import Task
from restorelab.train import interpolate_weights

ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def perception_scores(
    outputs: Sequence[torch.Tensor],
    references: Sequence[torch.Tensor],
    task: Task,
    lpips: nn.Module | None = None,
) -> dict[str, float | None]:
    """Mean ``psnr_y`` (``task.score``), ``niqe`` (lower is more natural; None when an output is
    too flat for NIQE, as an untrained network's can be) and, with ``lpips``, mean ``lpips`` of
    ``outputs`` against ``references``: (3, H, W) tensors in [0, 1], pairwise."""
    pairs = list(zip(outputs, references, strict=True))
    scores: dict[str, float | None] = {
        "psnr_y": sum(task.score(out, ref)["psnr_y"] for out, ref in pairs) / len(pairs)
    }
    try:
        scores["niqe"] = sum(niqe(out) for out, _ in pairs) / len(pairs)
    except ValueError:
        scores["niqe"] = None
    if lpips is not None:
        device = next(lpips.parameters()).device
        with torch.no_grad():
            scores["lpips"] = sum(
                float(lpips(out[None].to(device), ref[None].to(device))) for out, ref in pairs
            ) / len(pairs)
    return scores


def interpolation_sweep(
    psnr_model: nn.Module,
    gan_model: nn.Module,
    task: Task,
    images: Sequence[torch.Tensor],
    alphas: Sequence[float] = ALPHAS,
    lpips: nn.Module | None = None,
) -> list[dict[str, float | None]]:
    """One row per ``alpha`` (0: the PSNR model, 1: the GAN model): ``alpha`` and
    :func:`perception_scores` of the blended network on ``images`` (ground-truth (3, H, W)
    crops in [0, 1] that ``task`` degrades)."""
    psnr_state, gan_state = psnr_model.state_dict(), gan_model.state_dict()
    blended = copy.deepcopy(psnr_model).eval()
    low_res = [task.degrade(image) for image in images]
    rows = []
    for alpha in alphas:
        blended.load_state_dict(interpolate_weights(psnr_state, gan_state, alpha))
        with torch.no_grad():
            outputs = [task.restore(blended, lr).clamp(0, 1).cpu() for lr in low_res]
        rows.append({"alpha": float(alpha), **perception_scores(outputs, images, task, lpips)})
    return rows
