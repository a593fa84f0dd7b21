"""Whole-image inference: batching, device placement, padding, tiling and self-ensemble.

Taught in chapter 1 and used by every later chapter. Models of the course accept any input size
(those that downsample pad internally); ``tile`` splits very large images into overlapping tiles
so that inference fits in GPU memory, and stitches them back without seams; ``self_ensemble``
averages the outputs of the eight flips and quarter turns of the input (chapter 9).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

MIN_TILE_STEP = 8  # pixels: the smallest move from one tile to the next
# the 8 symmetries of a square: (mirror left-right first, then this many quarter turns)
DIHEDRAL = tuple((mirror, turns) for mirror in (False, True) for turns in range(4))


def tile_rule(overlap: int) -> str:
    """The tiles :func:`check_tile` accepts with ``overlap``, in words (for error messages)."""
    step = max(overlap, MIN_TILE_STEP)
    return (
        f"0 (no tiling) or at least {overlap + step} (tiles overlap by {overlap} pixels and "
        f"each must move on by at least {step})"
    )


def check_tile(tile: int, overlap: int) -> None:
    """Refuse a ``tile`` that would crawl: 0 (no tiling) is fine, else each tile must move on by
    ``tile - overlap`` >= max(``overlap``, :data:`MIN_TILE_STEP`) pixels. Work grows as
    (tile / step)^2, so this bounds it at 4x the whole-image work (``--tile 17`` with the
    overlap 16 would have moved 1 pixel a tile: 289x). Raises ValueError saying so."""
    if overlap < 0 or tile < 0 or 0 < tile < overlap + max(overlap, MIN_TILE_STEP):
        raise ValueError(f"tile must be {tile_rule(overlap)}, got {tile}")


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
    self_ensemble: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Run ``model`` on (C, H, W) or (N, C, H, W) in eval mode; returns the output on the input's device.

    ``tile``: if > 0, process tiles of ``tile`` x ``tile`` input pixels overlapping by ``overlap``
    (each output pixel is taken from a tile where it lies ``overlap // 2`` pixels away from the
    cut); :func:`check_tile` refuses tiles that move on too little. ``amp``: bf16/fp16 autocast on CUDA.
    ``self_ensemble``: the mean of the model's outputs for the 8 :data:`DIHEDRAL` symmetries of
    the input, each turned back (Lim et al. 2017's self-ensemble; 8 times the work).
    ``progress(done, total)`` is called after each pass of the model (a tile, for one symmetry).
    """
    check_tile(tile, overlap)
    if image.ndim not in (3, 4):
        raise ValueError(
            f"expected an image (C, H, W) or a batch (N, C, H, W), got {tuple(image.shape)}"
        )
    single = image.ndim == 3
    x = image[None] if single else image
    device = model_device(model)
    tick = _counter(
        progress, (len(DIHEDRAL) if self_ensemble else 1) * _tile_count(x, tile, overlap)
    )
    was_training = model.training
    model.eval()
    try:
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            if self_ensemble:
                outputs = (
                    _turn_back(_run(model, _turn(x, *sym), device, tile, overlap, tick), *sym)
                    for sym in DIHEDRAL
                )
                out = sum(outputs) / len(DIHEDRAL)
            else:
                out = _run(model, x, device, tile, overlap, tick)
    finally:
        model.train(was_training)
    out = out.to(image.device)
    return out[0] if single else out


def _run(model: nn.Module, x: torch.Tensor, device: torch.device, tile: int, overlap: int,
         tick: Callable[[], None]) -> torch.Tensor:  # fmt: skip
    if tile and max(x.shape[-2:]) > tile:
        return _tiled(model, x, device, tile, overlap, tick)
    out = model(x.to(device)).float()
    tick()
    return out


def _tile_count(x: torch.Tensor, tile: int, overlap: int) -> int:
    """How many passes of the model :func:`_run` makes for ``x`` (the same for every turn)."""
    h, w = x.shape[-2:]
    if not tile or max(h, w) <= tile:
        return 1
    return len(_starts(h, tile, tile - overlap)) * len(_starts(w, tile, tile - overlap))


def _counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return tick


def _turn(x: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    return (x.flip(-1) if mirror else x).rot90(turns, (-2, -1))


def _turn_back(x: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    x = x.rot90(-turns, (-2, -1))
    return x.flip(-1) if mirror else x


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def _tiled(model: nn.Module, x: torch.Tensor, device: torch.device, tile: int, overlap: int,
           tick: Callable[[], None]) -> torch.Tensor:  # fmt: skip
    """Tiles overlapping by ``overlap``; each keeps only its part away from the seams.

    Every output pixel comes from the tile in which it lies at least ``overlap // 2`` pixels
    from a cut, so the result equals the whole-image one when that margin covers the model's
    receptive field.
    """
    n, _, h, w = x.shape
    step = tile - overlap
    margin = overlap // 2
    out = None
    for top in _starts(h, tile, step):
        for left in _starts(w, tile, step):
            patch = x[..., top : top + tile, left : left + tile].to(device)
            y = model(patch).float()
            tick()
            scale = y.shape[-1] // patch.shape[-1]
            if out is None:
                out = torch.empty(n, y.shape[1], h * scale, w * scale, device=device)
            # keep [t0, t1) x [l0, l1) of this tile (input coordinates, relative to the tile)
            t0 = 0 if top == 0 else margin
            l0 = 0 if left == 0 else margin
            t1 = patch.shape[-2] if top + tile >= h else patch.shape[-2] - margin
            l1 = patch.shape[-1] if left + tile >= w else patch.shape[-1] - margin
            out[
                ...,
                (top + t0) * scale : (top + t1) * scale,
                (left + l0) * scale : (left + l1) * scale,
            ] = y[..., t0 * scale : t1 * scale, l0 * scale : l1 * scale]
    return out
