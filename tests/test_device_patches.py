"""The device sampler: whole batches cut with one gather, exactly the patches they describe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restorelab import models
from restorelab.cli import main
from restorelab.data import DevicePatches, PairedPatches, RandomPatches
from restorelab.data.device_patches import exact_uint8
from restorelab.io import to_levels
from restorelab.tasks import Denoising
from restorelab.train import TrainConfig, Trainer, fast_settings

GEN = torch.Generator().manual_seed(0)
PHOTOS = [torch.randint(0, 256, (3, h, w), generator=GEN, dtype=torch.uint8)
          for h, w in ((20, 31), (40, 24), (17, 17))]  # fmt: skip


def reference_patch(image: torch.Tensor, top: int, left: int, turn: int, p: int) -> torch.Tensor:
    """The patch a draw names, cut with slicing, flips and a transpose (bits 0, 1, 2)."""
    patch = image[:, top : top + p, left : left + p]
    if turn & 1:
        patch = patch.flip(-2)
    if turn & 2:
        patch = patch.flip(-1)
    if turn & 4:
        patch = patch.transpose(-2, -1)
    return patch


@pytest.mark.parametrize("as_float", [False, True])
def test_every_patch_is_the_crop_and_turn_its_draw_names(as_float):
    images = [image.float() / 255 for image in PHOTOS] if as_float else PHOTOS
    source = DevicePatches(images, 16, seed=3)
    assert source.flat.dtype == torch.uint8  # 8-bit levels are kept as bytes, float or not
    draws = source.draws(step=7, size=64)
    batch = source.cut(draws)
    assert batch.shape == (64, 3, 16, 16) and batch.dtype == torch.float32
    for i in range(64):
        k, top, left, turn = (int(draws[key][i]) for key in ("image", "top", "left", "turn"))
        expected = reference_patch(PHOTOS[k], top, left, turn, 16).float() / 255
        assert torch.equal(batch[i], expected), (k, top, left, turn)


def test_draws_cover_every_corner_turn_and_image_and_follow_the_weights():
    source = DevicePatches(PHOTOS, 16)
    draws = source.draws(step=0, size=4000)
    assert set(draws["turn"].tolist()) == set(range(8))
    assert set(draws["image"].tolist()) == {0, 1, 2}
    for k, image in enumerate(PHOTOS):
        mine = draws["image"] == k
        for side, key in zip(image.shape[-2:], ("top", "left"), strict=True):
            corners = draws[key][mine]
            assert corners.min() == 0 and corners.max() == side - 16  # both edges reachable
    only_second = DevicePatches(PHOTOS, 16, weights=[0, 1, 0]).draws(0, 100)["image"]
    assert set(only_second.tolist()) == {1}
    plain = DevicePatches(PHOTOS, 16, augment=False).draws(0, 100)["turn"]
    assert not plain.any()


def test_the_batch_of_a_step_depends_on_the_seed_and_step_only():
    a, b = DevicePatches(PHOTOS, 8, seed=1), DevicePatches(PHOTOS, 8, seed=1)
    assert torch.equal(a.batch(5, 12), b.batch(5, 12))
    assert not torch.equal(a.batch(5, 12), a.batch(6, 12))
    assert not torch.equal(a.batch(5, 12), DevicePatches(PHOTOS, 8, seed=2).batch(5, 12))


def test_images_that_are_not_8_bit_stay_exact_in_float32():
    images = [torch.rand(1, 12, 12, generator=GEN)]
    assert exact_uint8(images[0]) is None
    source = DevicePatches(images, 12, augment=False)
    assert source.flat.dtype == torch.float32
    assert torch.equal(source.batch(0, 1)[0], images[0])


def test_bytes_beside_images_that_are_not_8_bit_are_read_as_levels():
    """A set mixing uint8 and float images (chapter 8's crops: most photos exact bytes, one
    enlarged) is kept in float32, every image in [0, 1]: the bytes were once kept as 0-255."""
    levels, smooth = PHOTOS[2], torch.rand(3, 17, 17, generator=GEN)
    source = DevicePatches([levels, smooth], 17, augment=False, weights=[1, 0])
    assert source.flat.dtype == torch.float32
    assert torch.equal(source.batch(0, 2), (levels.float() / 255).expand(2, -1, -1, -1))
    source = DevicePatches([levels, smooth], 17, augment=False, weights=[0, 1])
    assert torch.equal(source.batch(0, 1)[0], smooth)


def test_pairs_are_cut_at_the_same_place_and_split():
    pairs = [(image.float() / 255, 1 - image.float() / 255) for image in PHOTOS]
    source = PairedPatches(pairs, 16, length=10).on_device("cpu")
    scans, cleans = source.batch(3, 32)
    assert scans.shape == cleans.shape == (32, 3, 16, 16)
    assert torch.allclose(cleans, 1 - scans, atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"image 2: 17x17 pixels, smaller than the 18px patch"):
        DevicePatches(PHOTOS, 18)
    with pytest.raises(ValueError, match="same number of channels"):
        DevicePatches([PHOTOS[0], PHOTOS[1][:1]], 8)
    with pytest.raises(ValueError, match=r"pair 2: a 17x17 pair, smaller than the 18px patch"):
        PairedPatches([(p.float(), p.float()) for p in PHOTOS], 18, 4).on_device("cpu")
    with pytest.raises(ValueError, match="sampler must be loader or device"):
        TrainConfig(sampler="gpu")
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        TrainConfig(compile_mode="fastest")


def _trainer(out_dir, sampler="device", dataset=None, **config):
    config = TrainConfig(steps=8, batch_size=4, lr=1e-3, log_every=4, progress=False,
                         tensorboard=False, sampler=sampler, seed=2, **config)  # fmt: skip
    torch.manual_seed(0)
    model = models.build("srcnn", features=(8, 4))
    dataset = dataset if dataset is not None else RandomPatches(PHOTOS, 16, seed=2)
    return Trainer(model, dataset, F.mse_loss, config, Denoising(sigma=25).make_pair, None,
                   out_dir)  # fmt: skip


def test_the_trainer_on_the_device_sampler_resumes_exactly(tmp_path):
    whole = _trainer(tmp_path / "whole")
    whole.fit()
    parts = _trainer(tmp_path / "parts")
    parts.fit(stop_at=3)
    resumed = _trainer(tmp_path / "parts")
    resumed.fit(resume=True)
    assert resumed.step == 8
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    # fits of one Trainer in chunks (the reference jobs' deadline): the images go to the device
    # once, and are let go when the run is done
    built = []

    class Counted(RandomPatches):
        def on_device(self, device):
            built.append(device)
            return super().on_device(device)

    chunked = _trainer(tmp_path / "chunked", dataset=Counted(PHOTOS, 16, seed=2))
    for stop in (3, 6, None):
        chunked.fit(stop_at=stop)
        assert (chunked._source is None) == (stop is None)
    assert len(built) == 1 and chunked.step == 8
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, chunked.model.state_dict()[name]), name
    loader = _trainer(None, sampler="loader")
    loader.fit()
    assert [r["step"] for r in loader.history] == [r["step"] for r in whole.history]
    assert loader.history[-1]["loss"] != whole.history[-1]["loss"]  # other patches, same loop


def test_a_dataset_that_cannot_cut_on_the_device_is_refused():
    items = [(torch.rand(1, 8, 8), torch.rand(1, 8, 8)) for _ in range(4)]
    trainer = _trainer(None, dataset=items)
    with pytest.raises(ValueError, match=r'sampler="device" needs a dataset .* list cannot'):
        trainer.fit()


def test_labelled_images_come_whole_with_their_labels_on_the_device():
    """Chapter 8's inpainter: whole square images with their classes, drawn per (seed, step)."""
    from restorelab.data import Labelled

    images = [torch.rand(3, 12, 12, generator=GEN) for _ in range(5)]
    labels = [4, 0, 3, 1, 2]
    source = Labelled(images, labels, seed=2).on_device("cpu")
    batch, classes = source.batch(step=3, size=32)
    assert batch.shape == (32, 3, 12, 12) and classes.dtype == torch.long
    for image, label in zip(batch, classes, strict=True):  # the image its label names, unturned
        assert torch.equal(image, images[labels.index(int(label))])
    assert set(classes.tolist()) == set(labels)
    again, _ = Labelled(images, labels, seed=2).on_device("cpu").batch(step=3, size=32)
    assert torch.equal(again, batch)
    # chapter 8's full settings decode the images once, as bytes: the same batches as the floats
    levels = [to_levels(image) for image in images]
    from_bytes, _ = Labelled(levels, labels, seed=2).on_device("cpu").batch(step=3, size=32)
    floats = [image.float() / 255 for image in levels]
    from_floats, _ = Labelled(floats, labels, seed=2).on_device("cpu").batch(step=3, size=32)
    assert from_bytes.dtype == torch.float32 and torch.equal(from_bytes, from_floats)
    with pytest.raises(ValueError, match=r"square images of one size; .*\(3, 12, 10\)"):
        Labelled([*images, torch.rand(3, 12, 10)], [*labels, 0]).on_device("cpu")
    with pytest.raises(ValueError, match=r"labels: one per image \(5\)"):
        DevicePatches(images, 12, labels=[0, 1])


def test_losses_are_read_in_groups_and_a_nan_is_still_named_by_its_step(tmp_path):
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = F.mse_loss(output, target)
        return loss * float("nan") if len(calls) == 3 else loss

    trainer = _trainer(tmp_path, checkpoint_every=0)
    trainer.loss_fn = loss_fn
    with pytest.raises(ValueError, match=r"^step 3: loss nan"):
        trainer.fit()
    assert len(calls) == 4  # read at the first log row (step 4), not after every step
    assert not (tmp_path / "last.pt").exists()  # nothing after the bad step was saved


def test_the_fast_preset_on_a_cpu_is_the_device_sampler(tmp_path, capsys):
    assert fast_settings("srcnn", "cpu") == {"sampler": "device"}
    assert main(["train", "--fast", "--steps", "2", "--val-every", "0", "--batch-size", "2",
                 "--patch-size", "16", "--device", "cpu", "--out", str(tmp_path)]) == 0  # fmt: skip
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["config"]["sampler"] == "device" and state["step"] == 2
