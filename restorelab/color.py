"""RGB <-> YCbCr in the two conventions of the course.

Taught in chapter 0 (metrics) and chapter 1 (SRCNN works on Y).

* ``"studio"``: ITU-R BT.601 studio range, as MATLAB's ``rgb2ycbcr`` and every SR paper:
  Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255, so Y lies in [16/255, 235/255].
* ``"full"``: full range (JPEG / OpenCV ``COLOR_RGB2YCrCb``): Y = 0.299 R + 0.587 G + 0.114 B,
  the competition's metric.

All functions take float tensors (..., 3, H, W) with values in [0, 1] and keep the leading dims.
"""

from __future__ import annotations

import torch

CONVENTIONS = ("studio", "full")

_STUDIO = (
    torch.tensor(
        [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
        dtype=torch.float64,
    )
    / 255.0
)
_STUDIO_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_FULL = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    dtype=torch.float64,
)
_FULL_OFFSET = torch.tensor([0.0, 128.0, 128.0], dtype=torch.float64) / 255.0


def _matrix(convention: str) -> tuple[torch.Tensor, torch.Tensor]:
    if convention == "studio":
        return _STUDIO, _STUDIO_OFFSET
    if convention == "full":
        return _FULL, _FULL_OFFSET
    raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def _check_rgb(image: torch.Tensor) -> None:
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"expected RGB (..., 3, H, W), got shape {tuple(image.shape)}")


def _apply(image: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    m = matrix.to(image.device, image.dtype)
    out = torch.einsum("ij,...jhw->...ihw", m, image)
    return out + offset.to(image.device, image.dtype)[:, None, None]


def rgb_to_ycbcr(image: torch.Tensor, convention: str = "studio") -> torch.Tensor:
    """RGB (..., 3, H, W) in [0, 1] -> YCbCr (..., 3, H, W), each channel scaled to [0, 1]."""
    _check_rgb(image)
    matrix, offset = _matrix(convention)
    return _apply(image, matrix, offset)


def ycbcr_to_rgb(image: torch.Tensor, convention: str = "studio") -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (values are not clamped)."""
    _check_rgb(image)
    matrix, offset = _matrix(convention)
    inverse = torch.linalg.inv(matrix)
    shifted = image - offset.to(image.device, image.dtype)[:, None, None]
    return _apply(shifted, inverse, torch.zeros(3, dtype=torch.float64))


def rgb_to_y(image: torch.Tensor, convention: str = "studio") -> torch.Tensor:
    """Luma of an RGB image: (..., 3, H, W) -> (..., 1, H, W) in [0, 1]."""
    _check_rgb(image)
    matrix, offset = _matrix(convention)
    return _apply(image, matrix[:1], offset[:1])
