"""Whole-image inference: batching, device placement, padding and tiling.

Taught in chapter 1 and used by every later chapter. Models of the course accept any input size
(those that downsample pad internally); ``tile`` splits very large images into overlapping tiles
so that inference fits in GPU memory, and blends them back with a smooth weight.
"""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def predict(
    model: nn.Module,
    image: torch.Tensor,
    tile: int = 0,
    overlap: int = 16,
    amp: bool = False,
) -> torch.Tensor:
    """Run ``model`` on (C, H, W) or (N, C, H, W) in eval mode; returns the output on the input's device.

    ``tile``: if > 0, process tiles of ``tile`` x ``tile`` input pixels overlapping by ``overlap``
    (outputs are blended with a triangular weight). ``amp``: bf16/fp16 autocast on CUDA.
    """
    single = image.ndim == 3
    x = image[None] if single else image
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            if tile and max(x.shape[-2:]) > tile:
                out = _tiled(model, x, device, tile, overlap)
            else:
                out = model(x.to(device)).float()
    finally:
        model.train(was_training)
    out = out.to(image.device)
    return out[0] if single else out


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def _tiled(model: nn.Module, x: torch.Tensor, device: torch.device, tile: int, overlap: int):
    n, _, h, w = x.shape
    step = max(tile - overlap, 1)
    out = weight = None
    for top in _starts(h, tile, step):
        for left in _starts(w, tile, step):
            patch = x[..., top : top + tile, left : left + tile].to(device)
            y = model(patch).float()
            scale = y.shape[-1] // patch.shape[-1]
            if out is None:
                out = torch.zeros(n, y.shape[1], h * scale, w * scale, device=device)
                weight = torch.zeros(1, 1, h * scale, w * scale, device=device)
            ramp_h = _ramp(y.shape[-2], device)
            ramp_w = _ramp(y.shape[-1], device)
            wgt = (ramp_h[:, None] * ramp_w[None, :])[None, None]
            t, l_ = top * scale, left * scale
            out[..., t : t + y.shape[-2], l_ : l_ + y.shape[-1]] += y * wgt
            weight[..., t : t + y.shape[-2], l_ : l_ + y.shape[-1]] += wgt
    return out / weight


def _ramp(size: int, device: torch.device) -> torch.Tensor:
    """Triangular blending weights, never zero, peaking in the middle of a tile."""
    pos = torch.arange(size, device=device, dtype=torch.float32)
    return torch.minimum(pos + 1, size - pos).clamp(min=1.0)
