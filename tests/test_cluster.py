"""restorelab.cluster: PCA -> HDBSCAN picks k -> KMeans, on data whose clusters are known."""

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from restorelab import models  # noqa: E402
from restorelab.cluster import cluster_features, image_features  # noqa: E402


def _blobs(sizes, dim=24, spread=0.3, seed=0):
    """Gaussian blobs around random centres far apart: features and their true labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (len(sizes), dim))
    features = np.concatenate(
        [c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)]
    )
    truth = np.repeat(np.arange(len(sizes)), sizes)
    order = rng.permutation(len(truth))
    return features[order], truth[order]


def _same_partition(a, b):
    """True when labels a and b split the items identically (up to renaming the clusters)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("sizes", [(50, 60, 70), (45, 45, 45, 45, 45)])
def test_hdbscan_finds_the_number_of_clusters_and_kmeans_assigns_every_point(sizes):
    features, truth = _blobs(sizes)
    result = cluster_features(features, n_components=10, min_cluster_size=20, min_samples=2)
    assert result.k == len(sizes)
    assert _same_partition(result.labels, truth)
    assert sorted(result.sizes.tolist()) == sorted(sizes)
    assert result.reduced.shape == (sum(sizes), 10)
    assert result.explained.sum() <= 1 + 1e-9
    assert np.array_equal(result.predict(features[:7]), result.labels[:7])  # new images: same rule


def test_outliers_are_noise_for_hdbscan_but_get_a_cluster_from_kmeans():
    features, truth = _blobs((60, 60))
    centres = [features[truth == k].mean(0) for k in (0, 1)]
    rng = np.random.default_rng(1)  # a few scattered points between the two groups
    outliers = centres[0] + rng.uniform(0.3, 0.7, (5, 1)) * (centres[1] - centres[0])
    outliers += rng.normal(0, 2, outliers.shape)
    result = cluster_features(np.concatenate([features, outliers]), min_cluster_size=20)
    assert result.k == 2
    assert (result.density_labels[-5:] == -1).sum() >= 3  # most of them HDBSCAN leaves out
    assert result.noise_fraction == pytest.approx(np.mean(result.density_labels == -1))
    assert set(result.labels.tolist()) == {0, 1}  # every image has a class
    assert _same_partition(result.labels[:-5], truth)


def test_fixed_seed_gives_the_same_clusters_and_too_few_points_give_one():
    features, _ = _blobs((50, 50, 50), seed=3)
    first = cluster_features(features, min_cluster_size=20, seed=4)
    again = cluster_features(torch.from_numpy(features), min_cluster_size=20, seed=4)
    assert np.array_equal(first.labels, again.labels)
    few = cluster_features(features[:12], min_cluster_size=40)
    assert few.k == 1 and (few.labels == 0).all()


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="N >= 2"):
        cluster_features(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        cluster_features(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="min_cluster_size"):
        cluster_features(np.random.rand(10, 3), min_cluster_size=1)


def test_image_features_are_the_unets_pooled_bottleneck():
    torch.manual_seed(0)
    net = models.build("unet_inpainter", features=4, depth=2, num_classes=3, embed_dim=4)
    images = [torch.rand(3, 16, 16) for _ in range(5)]
    features = image_features(net, images, batch_size=2)
    assert features.shape == (5, net.code_dim)
    with torch.no_grad():
        want = net.encode(torch.cat([torch.stack(images), torch.zeros(5, 1, 16, 16)], 1))
    assert torch.allclose(features, want, atol=1e-6)
    assert net.training  # put back in training mode
    resized = image_features(net, [torch.rand(3, 20, 30), torch.rand(3, 16, 16)], size=16)
    assert resized.shape == (2, net.code_dim)
