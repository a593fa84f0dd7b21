"""NIQE: a no-reference ("blind") image quality score, lower is more natural.

Taught in chapter 7, where it gives the perception-distortion plot a perception axis that needs
no download. Mittal, Soundararajan and Bovik, "Making a completely blind image quality analyzer"
(IEEE Signal Processing Letters, 2013), written from the paper's description:

1. The image becomes 8-bit grey levels (float64, 0-255): RGB is rounded to 8 bits, converted to
   the BT.601 studio-range Y of :mod:`restorelab.metrics` (the SR convention, Y in [16, 235]) and
   rounded again, as MATLAB's ``rgb2ycbcr`` does to a uint8 image; a 1-channel image is taken as
   that Y already. The rounding matters: NIQE reads the noise of smooth regions.
2. MSCN coefficients ``(I - mu) / (sigma + 1)``: local mean ``mu`` and deviation ``sigma`` under a
   7x7 Gaussian window (sigma 7/6), borders replicated.
3. The image is cropped to whole 96x96 patches (top left kept). Per patch, 18 features: the shape
   and scale of a generalised Gaussian (GGD) fitted to its MSCN values (the paper's fit; the
   authors' code fits an asymmetric one and averages its two scales), and, for the products of
   horizontally, vertically and diagonally (two diagonals) neighbouring MSCN values inside the
   patch (the authors' code also pairs values across its edges, wrapping around), an asymmetric
   GGD's shape, mean and left and right scales. Scales are the paper's ``beta``, as in the
   authors' code (BRISQUE's feature table calls them "variance"); shapes are picked from the
   grid 0.2, 0.201, ..., 10 by moment matching, as in the authors' code.
4. The same 18 features again on the image shrunk by 2 (bicubic with antialiasing: torch's,
   which differs from MATLAB's ``imresize`` only near the borders), 48x48 patches, so each
   patch has 36 features.
5. A pristine model (:class:`PristineModel`) holds the mean and covariance of the features of
   the sharpest patches of clean photos (:func:`fit_pristine`). An image's score is the distance
   ``sqrt((mu_p - mu_t)^T pinv((S_p + S_t) / 2) (mu_p - mu_t))`` between that model and the
   mean ``mu_t`` and covariance ``S_t`` of the features of all its patches.

The packaged model (:func:`load_pristine`) is fitted on the course's own training photos
(``scripts/fit_niqe.py``), not on the authors' 125 photos, so its scores are comparable with each
other, not with the numbers papers print.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.special import gamma

from restorelab.metrics import _levels

PATCH = 96  # patch side at full scale; 48 at half scale
SHARPNESS_THRESHOLD = 0.75  # pristine patches: mean local deviation above 0.75 x the image's max
FEATURES = 36
PRISTINE_PATH = Path(__file__).parent / "weights" / "niqe_pristine.safetensors"

_SHAPES = np.arange(200, 10_001) / 1000  # 0.2 ... 10 in steps of 0.001
# E[|x|]^2 / E[x^2] of a GGD of each shape: increasing with the shape, so a sorted lookup table
_RATIOS = gamma(2 / _SHAPES) ** 2 / (gamma(1 / _SHAPES) * gamma(3 / _SHAPES))


def _window() -> np.ndarray:
    x = np.arange(7) - 3.0
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def _local_mean(image: np.ndarray) -> np.ndarray:
    """7x7 Gaussian mean (sigma 7/6) of a (H, W) array, borders replicated: two 1-D passes."""
    g = _window()
    return ndimage.correlate1d(
        ndimage.correlate1d(image, g, 0, mode="nearest"), g, 1, mode="nearest"
    )


def _mscn(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) grey levels -> MSCN coefficients (H, W) and the local deviation ``sigma`` (H, W)."""
    mu = _local_mean(image)
    sigma = np.sqrt(np.abs(_local_mean(image * image) - mu * mu))
    return (image - mu) / (sigma + 1), sigma


def _patches(x: np.ndarray, size: int) -> np.ndarray:
    """(H, W) with H and W multiples of ``size`` -> (P, size, size), patches in row-major order."""
    h, w = x.shape
    return x.reshape(h // size, size, w // size, size).swapaxes(1, 2).reshape(-1, size, size)


def _nearest_shape(ratio: np.ndarray) -> np.ndarray:
    """The grid shape whose moment ratio is nearest to each of ``ratio`` (NaN stays NaN)."""
    upper = np.clip(np.searchsorted(_RATIOS, ratio), 1, len(_RATIOS) - 1)
    lower = upper - 1
    nearer = np.where(
        np.abs(_RATIOS[lower] - ratio) <= np.abs(_RATIOS[upper] - ratio), lower, upper
    )
    return np.where(np.isfinite(ratio), _SHAPES[nearer], np.nan)


def _ggd(x: np.ndarray) -> list[np.ndarray]:
    """GGD fit of each row of (P, N): [shape (P,), scale beta (P,)]."""
    second = np.mean(x * x, axis=1)
    shape = _nearest_shape(np.mean(np.abs(x), axis=1) ** 2 / second)
    return [shape, np.sqrt(second * gamma(1 / shape) / gamma(3 / shape))]


def _aggd(x: np.ndarray) -> list[np.ndarray]:
    """Asymmetric GGD fit of each row of (P, N): [shape, mean, left scale, right scale], each (P,)."""
    squares = x * x
    left = np.sqrt(np.sum(squares * (x < 0), axis=1) / np.sum(x < 0, axis=1))
    right = np.sqrt(np.sum(squares * (x > 0), axis=1) / np.sum(x > 0, axis=1))
    skew = left / right
    ratio = np.mean(np.abs(x), axis=1) ** 2 / np.mean(squares, axis=1)
    ratio = ratio * (skew**3 + 1) * (skew + 1) / (skew**2 + 1) ** 2
    shape = _nearest_shape(ratio)
    unit = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    beta_left, beta_right = left * unit, right * unit
    mean = (beta_right - beta_left) * gamma(2 / shape) / gamma(1 / shape)
    return [shape, mean, beta_left, beta_right]


def _scale_features(mscn: np.ndarray, size: int) -> np.ndarray:
    """(H, W) MSCN coefficients -> (P, 18) features of its ``size`` x ``size`` patches."""
    p = _patches(mscn, size)
    flat = p.reshape(len(p), -1)
    products = (
        p[:, :, :-1] * p[:, :, 1:],  # horizontal neighbours
        p[:, :-1, :] * p[:, 1:, :],  # vertical
        p[:, :-1, :-1] * p[:, 1:, 1:],  # main diagonal
        p[:, :-1, 1:] * p[:, 1:, :-1],  # anti-diagonal
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # flat patches: NaN, dropped later
        columns = _ggd(flat)
        for product in products:
            columns += _aggd(product.reshape(len(p), -1))
    return np.stack(columns, axis=1)


def _grey_levels(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, H, W) in [0, 1] -> (H, W) float64 8-bit Y (0-255), checked."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"NIQE takes one (3, H, W) or (1, H, W) image in [0, 1], got {shape}")
    h, w = image.shape[-2:]
    if h // PATCH * (w // PATCH) < 2:
        raise ValueError(
            f"NIQE needs at least two {PATCH}x{PATCH} patches: an image of at least "
            f"{PATCH}x{2 * PATCH} or {2 * PATCH}x{PATCH} pixels, got {h}x{w}"
        )
    return _levels(image.detach().cpu()[None], y_channel=True)[0, 0].round().numpy()


def patch_features(image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The NIQE features of every 96x96 patch of ``image`` and its sharpness.

    ``image``: (3, H, W) or (1, H, W) in [0, 1], at least 96x192 or 192x96. Returns features
    (P, 36), float64 (rows with NaN for flat patches), and each patch's sharpness (P,): its
    mean local deviation on the 0-255 scale. Patches in row-major order over the cropped image.
    """
    grey = _grey_levels(image)
    h, w = (s // PATCH * PATCH for s in grey.shape)
    grey = grey[:h, :w]
    mscn, sigma = _mscn(grey)
    half = F.interpolate(
        torch.from_numpy(grey)[None, None], scale_factor=0.5, mode="bicubic", antialias=True
    )[0, 0].numpy()
    features = np.concatenate(
        [_scale_features(mscn, PATCH), _scale_features(_mscn(half)[0], PATCH // 2)], axis=1
    )
    return features, _patches(sigma, PATCH).mean(axis=(1, 2))


@dataclass
class PristineModel:
    """NIQE's model of natural images: a Gaussian over the 36 patch features.

    ``mean``: (36,) float64; ``cov``: (36, 36) float64, symmetric; ``note``: what it was fitted
    on; ``metadata``: more provenance (photos, patch size, date, command), stored as text.
    """

    mean: torch.Tensor
    cov: torch.Tensor
    note: str
    metadata: dict[str, str] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write ``mean`` and ``cov`` as float64 safetensors, ``note`` and ``metadata`` as its
        metadata. Returns ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        save_file(
            {"mean": self.mean.double().contiguous(), "cov": self.cov.double().contiguous()},
            str(path),
            metadata={**self.metadata, "note": self.note},
        )
        path.chmod(0o644)  # safetensors creates the file readable by its owner only
        return path

    @classmethod
    def load(cls, path: str | Path) -> PristineModel:
        """Read a model written by :meth:`save`."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no NIQE pristine model here")
        try:
            with safe_open(str(path), framework="pt") as file:
                tensors = {name: file.get_tensor(name) for name in file.keys()}
                metadata = dict(file.metadata() or {})
        except Exception as error:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
        if set(tensors) != {"mean", "cov"} or tensors["mean"].shape != (FEATURES,):
            raise ValueError(
                f"{path}: expected tensors mean ({FEATURES},) and cov, got {list(tensors)}"
            )
        return cls(tensors["mean"], tensors["cov"], metadata.pop("note", ""), metadata)


def load_pristine() -> PristineModel:
    """The packaged pristine model, fitted on the course's training photos (scripts/fit_niqe.py)."""
    return PristineModel.load(PRISTINE_PATH)


def fit_pristine(images: Iterable[torch.Tensor], note: str = "") -> PristineModel:
    """Fit a pristine model on clean ``images``, each (3, H, W) or (1, H, W) in [0, 1].

    From each image, the patches whose sharpness exceeds 0.75 x that image's sharpest patch
    (flat patches left out); the model is the mean and covariance (N - 1 normalisation) of their
    features, pooled over images. ``metadata``: the patch size and how many patches were kept.
    """
    kept = []
    for image in images:
        features, sharpness = patch_features(image)
        sharp = (sharpness > SHARPNESS_THRESHOLD * sharpness.max()) & np.isfinite(features).all(1)
        kept.append(features[sharp])
    pooled = np.concatenate(kept)
    if len(pooled) <= FEATURES:
        raise ValueError(
            f"a NIQE model needs more than {FEATURES} sharp patches, these images give {len(pooled)}"
        )
    cov = np.cov(pooled, rowvar=False)
    return PristineModel(
        torch.from_numpy(pooled.mean(0)),
        torch.from_numpy((cov + cov.T) / 2),
        note,
        {"patch_size": str(PATCH), "patches": str(len(pooled))},
    )


def niqe(image: torch.Tensor, model: PristineModel | None = None) -> float:
    """NIQE score of one image, lower is more natural (0 would be the pristine model itself).

    ``image``: (3, H, W) RGB or (1, H, W) grey/Y, float in [0, 1], at least 96x192 or 192x96
    pixels; RGB is measured on its BT.601 studio-range Y, rounded to 8 bits. ``model``: the pristine model, by
    default :func:`load_pristine`'s. Returns a float >= 0, unitless.
    """
    model = model or load_pristine()
    features, _ = patch_features(image)
    features = features[np.isfinite(features).all(1)]
    if len(features) < 2:
        raise ValueError("NIQE needs at least two patches with texture; this image is flat")
    diff = model.mean.numpy() - features.mean(0)
    pooled = (model.cov.numpy() + np.cov(features, rowvar=False)) / 2
    return math.sqrt(max(float(diff @ np.linalg.pinv(pooled) @ diff), 0.0))
