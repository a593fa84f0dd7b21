import pytest
import torch
from torch import nn

from restorelab import models
from restorelab.data import benchmark_dir, benchmark_images
from restorelab.infer import DIHEDRAL, predict
from restorelab.io import list_images, read_image
from restorelab.tasks import SuperResolution


class Upscale2(nn.Module):
    """A tiny x2 model with a 3x3 receptive field (conv + pixel shuffle)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


def test_tiled_prediction_matches_whole_image():
    torch.manual_seed(0)
    model = Upscale2()
    image = torch.rand(1, 3, 70, 90)
    whole = predict(model, image)
    tiled = predict(model, image, tile=32, overlap=8)
    assert tiled.shape == whole.shape == (1, 3, 140, 180)
    assert (tiled - whole).abs().max() < 1e-4  # overlap covers the receptive field
    assert model.training  # predict restores the mode it found


def test_self_ensemble_turns_any_model_into_one_that_commutes_with_flips_and_turns():
    torch.manual_seed(0)
    model = Upscale2()  # a random 3x3 kernel: turning the input does not turn the output
    image = torch.rand(1, 3, 18, 26)
    plain = predict(model, image)
    ensemble = predict(model, image, self_ensemble=True)
    assert ensemble.shape == plain.shape == (1, 3, 36, 52)
    for mirror, turns in DIHEDRAL[1:]:

        def turn(x, mirror=mirror, turns=turns):
            return (x.flip(-1) if mirror else x).rot90(turns, (-2, -1))

        turned = turn(image)
        assert (predict(model, turned) - turn(plain)).abs().max() > 1e-2
        assert (predict(model, turned, self_ensemble=True) - turn(ensemble)).abs().max() < 1e-5
    tiled = predict(model, image, tile=16, overlap=8, self_ensemble=True)
    assert (tiled - ensemble).abs().max() < 1e-5  # tiles inside each of the 8 runs


@pytest.mark.parametrize(
    ("tile", "self_ensemble"), [(0, False), (32, False), (0, True), (32, True)]
)
def test_progress_counts_every_pass_of_the_model(tile, self_ensemble):
    model = Upscale2()
    passes = []
    model.register_forward_hook(lambda *_: passes.append(1))
    calls = []
    predict(model, torch.rand(1, 3, 70, 90), tile=tile, overlap=8, self_ensemble=self_ensemble,
            progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    total = len(passes)
    assert total == (8 if self_ensemble else 1) * (12 if tile else 1)  # 3 x 4 tiles of 32
    assert calls == [(done, total) for done in range(1, total + 1)]


def test_predict_keeps_single_image_layout():
    model = models.build("srcnn", features=(4, 4)).eval()
    assert predict(model, torch.rand(1, 20, 21)).shape == (1, 20, 21)


def test_super_resolution_pairs_and_restore():
    task = SuperResolution(scale=3)
    hr = torch.rand(4, 3, 30, 30)
    inputs, target = task.make_pair(hr)
    assert inputs.shape == target.shape == (4, 1, 30, 30)  # Y, pre-upsampled
    rgb = SuperResolution(scale=3, channels="rgb", pre_upsample=False)
    inputs, target = rgb.make_pair(hr)
    assert inputs.shape == (4, 3, 10, 10) and target.shape == (4, 3, 30, 30)
    sr = task.restore(models.build("srcnn", features=(4, 4)), task.degrade(hr[0]))
    assert sr.shape == (3, 30, 30) and 0 <= sr.min() and sr.max() <= 1
    with pytest.raises(ValueError, match="channels"):
        SuperResolution(channels="ycbcr")


@pytest.mark.parametrize("scale, paper", [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_bicubic_on_set5_matches_the_papers_baseline(datasets_dir, scale, paper):
    """Our conventions reproduce the bicubic row of SR papers' Set5 tables (Y channel)."""
    task = SuperResolution(scale=scale)
    hr = [image for _, image in benchmark_images("Set5")]
    lr = [read_image(p) for p in list_images(benchmark_dir(f"Set5/LR_bicubic/X{scale}"))]
    scores = task.evaluate(None, hr, lr)["psnr_y"]
    assert sum(scores) / len(scores) == pytest.approx(paper, abs=0.05)
