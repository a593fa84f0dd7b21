"""Chapter 8's data path: Arrow sets written with datasets, read with ArrowImages through the
Trainer's Prefetcher; damage and augmentation made per batch on the device."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restorelab.data import ArrowImages, Labelled, column_values, embedded_crops, load_photo
from restorelab.data.device_patches import exact_uint8
from restorelab.degrade.masks import MaskConfig
from restorelab.io import to_tensor
from restorelab.tasks import Inpainting
from restorelab.train import StepSampler, TrainConfig, Trainer

datasets = pytest.importorskip("datasets")
from restorelab.data import write_arrow_images  # noqa: E402


def test_arrow_set_round_trip_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (10, 12, 3), dtype=np.uint8) for _ in range(4)]
    rows = zip(arrays, [2, 0, 1, 2], strict=True)
    write_arrow_images(rows, tmp_path / "set", label_names=["a", "b", "c"])
    images = ArrowImages(tmp_path / "set")
    assert len(images) == 4
    assert all(torch.equal(images[i], to_tensor(arrays[i])) for i in range(4))  # PNG: lossless
    assert column_values(tmp_path / "set", "label") == [2, 0, 1, 2]
    with pytest.raises(KeyError, match="nope"):
        column_values(tmp_path / "set", "nope")
    floats = [torch.rand(3, 8, 8)]
    write_arrow_images(zip(floats, [5], strict=True), tmp_path / "floats")
    assert torch.allclose(ArrowImages(tmp_path / "floats")[0], floats[0], atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="no rows"):
        write_arrow_images(iter([]), tmp_path / "empty")


def test_embedded_crops_are_fixed_by_the_seed_and_labelled_by_photo():
    names = ("astronaut", "brick")
    crops = list(embedded_crops(6, 32, seed=1, names=names))
    again = list(embedded_crops(6, 32, seed=1, names=names))
    assert [label for _, label in crops] == [0, 1, 0, 1, 0, 1]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(crops, again, strict=True))
    brick = to_tensor(load_photo("brick")).expand(3, -1, -1)
    patch = crops[1][0]
    windows = brick.unfold(1, 32, 1).unfold(2, 32, 1)  # (3, H', W', 32, 32)
    found = (windows == patch[:, None, None]).flatten(3).all(3).all(0)
    assert found.any()  # the crop is a window of its photo
    # "text" is 172 x 448: chapter 8's full setting (512 px crops) enlarges it, never fails
    (large, label), *_ = embedded_crops(1, 512, names=("text",))
    assert large.shape == (3, 512, 512) and label == 0
    assert exact_uint8(large) is not None  # 8-bit levels, as a decoded file: kept as bytes


def test_labelled_needs_one_label_per_item():
    with pytest.raises(ValueError, match="one label per item"):
        Labelled([torch.zeros(3, 4, 4)] * 3, [0, 1])
    image, label = Labelled([torch.zeros(3, 4, 4)] * 2, [0, 4])[1]
    assert label.dtype == torch.long and int(label) == 4


def test_damage_is_new_every_step_and_shares_the_augmentation():
    task = Inpainting(crop=24, mask=MaskConfig(noise_sigma=0.0))
    images = torch.rand(4, 3, 32, 32)
    classes = torch.tensor([0, 1, 2, 3])
    (inputs, got_classes), target = task.make_pair(
        (images, classes), torch.Generator().manual_seed(0)
    )
    assert inputs.shape == (4, 4, 24, 24) and target.shape == (4, 3, 24, 24)
    assert torch.equal(got_classes, classes)
    damaged, mask = inputs[:, :3], inputs[:, 3:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0.1 <= float(mask.mean()) <= 0.4
    # without noise, the known pixels of the input are the target's: one augmentation for both
    assert torch.equal(damaged * (1 - mask), target * (1 - mask))
    (same, _), same_target = task.make_pair((images, classes), torch.Generator().manual_seed(0))
    assert torch.equal(same, inputs) and torch.equal(same_target, target)
    (other, _), _ = task.make_pair((images, classes), torch.Generator().manual_seed(1))
    assert not torch.equal(other[:, 3:], mask)  # another step, other damage
    noisy = Inpainting(crop=24, mask=MaskConfig(noise_sigma=10.0))
    (inputs, _), target = noisy.make_pair(images, torch.Generator().manual_seed(0))
    known = 1 - inputs[:, 3:]
    assert 0 < float(((inputs[:, :3] - target) * known).abs().max()) < 0.3  # noise, known pixels
    (_, zeros), _ = noisy.make_pair(images, torch.Generator().manual_seed(0))
    assert torch.equal(zeros, torch.zeros(4, dtype=torch.long))  # images alone: class 0


class ClassRecorder(nn.Module):
    """Returns its damaged input; records the classes it is called with."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, x, classes):
        self.seen.append(torch.as_tensor(classes).clone())
        return x[:, :3] * self.scale


def test_trainer_reads_arrow_through_the_prefetcher_and_passes_the_class(tmp_path):
    write_arrow_images(embedded_crops(8, 32, names=("astronaut", "brick")), tmp_path / "set")
    images = ArrowImages(tmp_path / "set")
    labels = column_values(tmp_path / "set", "label")
    model = ClassRecorder()
    config = TrainConfig(steps=3, batch_size=4, scheduler="constant", progress=False, prefetch=2,
                         tensorboard=False, device="cpu")  # fmt: skip
    task = Inpainting(crop=16)
    Trainer(model, Labelled(images, labels), F.l1_loss, config, make_pair=task.make_pair).fit()
    assert len(model.seen) == 3
    read = list(StepSampler(len(images), 0, 12, config.seed, batch_size=4))  # the rows read
    assert torch.cat(model.seen).tolist() == [labels[i] for i in read]


def test_evaluation_scores_the_composite_on_fixed_damage():
    task = Inpainting()
    images = [torch.rand(3, 32, 32), torch.rand(3, 32, 32)]
    damaged = task.evaluate(None, images)["psnr"]
    assert task.evaluate(None, images)["psnr"] == damaged  # the same damage every time

    class Oracle(nn.Module):  # knows the original: fills the holes perfectly
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))
            self.calls = 0

        def forward(self, x, classes):
            self.calls += 1
            return images[self.calls - 1][None]

    perfect = task.evaluate(Oracle(), images, classes=[0, 1])["psnr"]
    assert all(p > d + 10 for p, d in zip(perfect, damaged, strict=True))


class FakeStream:
    """What datasets.load_dataset(..., streaming=True) returns, with rows made here."""

    def __init__(self, rows):
        self.rows = rows

    def shuffle(self, seed, buffer_size):
        return self

    def __iter__(self):
        return iter(self.rows)


def test_wikiart_stream_is_centre_cropped_and_labelled(monkeypatch):
    from PIL import Image

    from restorelab.data import stream_wikiart

    rng = np.random.default_rng(0)
    rows = [
        {"image": Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)), "style": 3},
        {"image": Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)), "style": 1},
        {"image": Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)), "style": 7},
        {"image": Image.fromarray(rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)), "style": 2},
    ]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: FakeStream(rows))
    got = list(stream_wikiart(2, size=64))
    assert [label for _, label in got] == [3, 7]  # the 20x20 thumbnail is skipped
    assert all(image.shape == (3, 64, 64) for image, _ in got)
    assert torch.equal(got[1][0][0], to_tensor(np.asarray(rows[2]["image"]))[0])  # 64: as is
    with pytest.raises(KeyError, match="genre"):
        next(stream_wikiart(1, size=64, label="genre"))


def test_wikiart_offline_says_what_to_do(monkeypatch):
    from restorelab.data import stream_wikiart

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'huggan/wikiart' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="needs the internet.*embedded_crops"):
        next(stream_wikiart(1))


def test_the_mean_colour_fill_keeps_the_known_pixels_and_fills_holes_with_their_mean():
    from restorelab.tasks.inpaint import mean_colour_fill

    image, mask = torch.rand(3, 16, 16), torch.zeros(1, 16, 16)
    mask[:, 4:8, 2:12] = 1
    fill = mean_colour_fill(torch.cat([image * (1 - mask), mask]))
    known = mask[0] == 0
    assert torch.equal(fill[:, known], image[:, known])
    holes = fill[:, ~known]
    assert torch.allclose(holes, image[:, known].mean(1, keepdim=True).expand_as(holes))
