"""NIQE (restorelab.niqe, chapter 7): blur and noise raise it; the packaged model is reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from restorelab.color import rgb_to_y
from restorelab.data.embedded import VAL_PHOTOS, load_photo
from restorelab.degrade.blur import separable_gaussian
from restorelab.degrade.noise import add_gaussian_noise
from restorelab.io import file_sha256, to_tensor
from restorelab.niqe import PRISTINE_PATH, PristineModel, fit_pristine, load_pristine, niqe


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return image
    return separable_gaussian(image[None], torch.tensor([sigma]), 2 * round(3 * sigma) + 1)[0]


# rocket's sky carries the photo's own fine noise, which a slight blur (sigma 1) smooths away:
# NIQE scores that one as about as natural as the original; from sigma 2 on it rises
BLURS = {"chelsea": (0, 1, 2, 3), "coins": (0, 1, 2, 3), "rocket": (0, 2, 3)}


@pytest.mark.parametrize("name", VAL_PHOTOS)
def test_niqe_rises_with_blur(name: str) -> None:
    image, model = to_tensor(load_photo(name)), load_pristine()
    scores = [niqe(blurred(image, sigma), model) for sigma in BLURS[name]]
    assert scores == sorted(scores) and len(set(scores)) == len(scores), (name, scores)


@pytest.mark.parametrize("name", VAL_PHOTOS)
def test_niqe_rises_with_noise(name: str) -> None:
    image, model = to_tensor(load_photo(name)), load_pristine()
    noisy = [add_gaussian_noise(image, s, torch.Generator().manual_seed(0)) for s in (10, 25)]
    scores = [niqe(x.clamp(0, 1), model) for x in [image, *noisy]]
    assert scores[0] < scores[1] < scores[2], (name, scores)


def test_packaged_model_is_reproduced_by_its_recorded_fit() -> None:
    stored = load_pristine()
    names = stored.metadata["photos"].split(",")
    assert not set(names) & set(VAL_PHOTOS), "the validation photos must stay out of the fit"
    refit = fit_pristine(to_tensor(load_photo(name)) for name in names)
    assert refit.metadata["patches"] == stored.metadata["patches"]
    torch.testing.assert_close(refit.mean, stored.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(refit.cov, stored.cov, rtol=1e-6, atol=1e-6)
    assert torch.equal(stored.cov, stored.cov.T)
    assert float(torch.linalg.eigvalsh(stored.cov).min()) > 0
    card = json.loads(PRISTINE_PATH.with_suffix(".json").read_text())
    assert card["sha256"] == file_sha256(PRISTINE_PATH), "card is stale: rerun scripts/fit_niqe.py"


def test_save_load_round_trip(tmp_path) -> None:
    model = PristineModel(torch.arange(36.0).double(), torch.eye(36).double(), "toy", {"a": "b"})
    loaded = PristineModel.load(model.save(tmp_path / "m.safetensors"))
    assert torch.equal(loaded.mean, model.mean) and torch.equal(loaded.cov, model.cov)
    assert (loaded.note, loaded.metadata) == ("toy", {"a": "b"})


def test_rgb_scores_as_its_y() -> None:
    image = to_tensor(load_photo("chelsea"))
    assert image.shape[0] == 3
    assert niqe(image) == niqe(rgb_to_y(image))


@pytest.mark.parametrize("size", [(95, 500), (96, 191), (150, 150)])
def test_too_small_image_is_refused(size: tuple[int, int]) -> None:
    h, w = size
    with pytest.raises(
        ValueError, match=rf"^NIQE needs .* at least 96x192 or 192x96 pixels, got {h}x{w}$"
    ):
        niqe(torch.rand(3, h, w))


def test_flat_image_is_refused() -> None:
    with pytest.raises(ValueError, match="flat"):
        niqe(torch.full((1, 200, 200), 0.5))


def test_fit_needs_more_patches_than_features() -> None:
    image = torch.rand(1, 192, 192, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="more than 36 sharp patches"):
        fit_pristine([image])
    assert np.isfinite(niqe(image))
