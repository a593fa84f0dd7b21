"""Clustering images by the features of a network: PCA, then HDBSCAN picks k, then KMeans.

Taught in chapter 8 (the clustered inpainter). The pipeline of the student project the chapter
follows:

1. :func:`image_features`: every image through the encoder of the trained inpainting U-Net
   (:meth:`restorelab.models.unet_inpainter.UNetInpainter.encode`, the average-pooled
   bottleneck), giving one vector (D,) per image;
2. PCA to ``n_components`` (10) dimensions, after standardising each feature;
3. HDBSCAN (the ``hdbscan`` package) on those vectors: it finds the dense groups and calls the
   rest noise, so it *decides how many clusters there are*, but leaves some images without one;
4. KMeans with that number ``k`` assigns *every* image to one of ``k`` clusters (the
   inpainter needs a class for each image).

``min_cluster_size`` is the smallest group HDBSCAN accepts (the project: 40 of some thousand
images; scale it with the data), ``min_samples`` how conservative it is (the project: 2). PCA
and KMeans take ``seed``, so the same features always give the same clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset


@dataclass
class Clustering:
    """What :func:`cluster_features` found, for N images.

    ``labels`` (N,) int: each image's KMeans cluster in ``0 .. k - 1``. ``density_labels`` (N,)
    int: HDBSCAN's clusters, -1 for the images it calls noise. ``reduced`` (N, n_components):
    the standardised features after PCA. ``explained`` (n_components,): the share of the
    variance each PCA component keeps. ``sizes`` (k,): images per cluster.
    """

    labels: np.ndarray
    k: int
    density_labels: np.ndarray
    reduced: np.ndarray
    explained: np.ndarray
    scaling: tuple[np.ndarray, np.ndarray]  # the features' mean and spread, for new images
    pca: object  # the fitted sklearn PCA
    kmeans: object  # the fitted sklearn KMeans

    def predict(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """The cluster (M,) of new feature vectors (M, D): the nearest KMeans centre after
        the same standardisation and PCA (e.g. for validation images)."""
        x = _as_array(features)
        mean, spread = self.scaling
        return self.kmeans.predict(self.pca.transform((x - mean) / spread)).astype(np.int64)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)

    @property
    def noise_fraction(self) -> float:
        """The share of images HDBSCAN left without a cluster."""
        return float(np.mean(self.density_labels < 0))


def _as_array(features: np.ndarray | torch.Tensor) -> np.ndarray:
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else features
    return np.asarray(x, dtype=np.float64)


def _hdbscan(min_cluster_size: int, min_samples: int):
    """The ``hdbscan`` package's HDBSCAN; scikit-learn's (>= 1.3, the same algorithm) without it."""
    try:
        from hdbscan import HDBSCAN
    except ImportError:
        from sklearn.cluster import HDBSCAN
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples)


def count_clusters(density_labels: np.ndarray | Sequence[int]) -> int:
    """The k that HDBSCAN's labels decide: the number of clusters found, noise (-1) not counted;
    1 when everything is noise (every image then shares one class)."""
    found = {int(label) for label in density_labels if int(label) >= 0}
    return max(len(found), 1)


def cluster_features(
    features: np.ndarray | torch.Tensor,
    n_components: int = 10,
    min_cluster_size: int = 40,
    min_samples: int = 2,
    seed: int = 0,
) -> Clustering:
    """Cluster N feature vectors (N, D): standardise, PCA, HDBSCAN for k, KMeans with k.

    When HDBSCAN finds no cluster at all (everything noise: too few images for
    ``min_cluster_size``), k is 1 and every image gets class 0. Raises ValueError for fewer than
    two vectors, non-finite values or a ``min_cluster_size`` below 2.
    """
    try:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
    except ImportError as error:
        raise ImportError(
            "restorelab.cluster needs scikit-learn and hdbscan: pip install 'restorelab[cluster]'"
        ) from error
    x = _as_array(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold NaN or infinite values")
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be at least 2, got {min_cluster_size}")
    mean, spread = x.mean(0), x.std(0)
    spread = np.where(spread > 0, spread, 1.0)
    x = (x - mean) / spread
    components = min(n_components, *x.shape)
    pca = PCA(n_components=components, random_state=seed)
    reduced = pca.fit_transform(x)
    density = _hdbscan(min_cluster_size, min_samples).fit_predict(reduced)
    k = count_clusters(density)
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed)
    labels = kmeans.fit_predict(reduced)
    return Clustering(
        labels.astype(np.int64), k, density.astype(np.int64), reduced,
        pca.explained_variance_ratio_, (mean, spread), pca, kmeans,
    )  # fmt: skip


def image_features(
    encode: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
    images: Sequence[torch.Tensor] | torch.Tensor | Dataset,
    size: int | None = None,
    batch_size: int = 32,
    mask_channel: bool = True,
) -> torch.Tensor:
    """(N, D) feature vectors of clean images (C, H, W) in [0, 1], computed in batches.

    ``images``: anything with ``len`` and indexing (a list, a tensor, an
    :class:`~restorelab.data.ArrowImages`): only one batch is in memory at a time.

    ``encode``: a :class:`~restorelab.models.unet_inpainter.UNetInpainter` (its ``encode`` is
    used) or any function (N, C', H, W) -> (N, D). ``size``: resize every image to size x size
    first (needed when the images differ in size). ``mask_channel``: append an all-zero mask
    channel (the inpainter's input for an undamaged image). Runs without gradients, on the
    device of the network's weights.
    """
    function = encode.encode if hasattr(encode, "encode") else encode
    device = next(encode.parameters()).device if isinstance(encode, nn.Module) else "cpu"
    was_training = encode.training if isinstance(encode, nn.Module) else False
    if isinstance(encode, nn.Module):
        encode.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = [images[i] for i in range(start, min(start + batch_size, len(images)))]
                if size is not None:
                    chunk = [F.interpolate(im[None], size=(size, size), mode="bilinear",
                                           antialias=True, align_corners=False)[0] for im in chunk]  # fmt: skip
                batch = torch.stack(chunk).to(device)
                if mask_channel:
                    batch = torch.cat([batch, batch.new_zeros(batch[:, :1].shape)], 1)
                out.append(function(batch).float().cpu())
    finally:
        if was_training:
            encode.train()
    return torch.cat(out)
