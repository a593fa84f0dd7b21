import pytest
import torch
from torch.utils.data import DataLoader

from restorelab.data import (
    TRAIN_PHOTOS,
    VAL_PHOTOS,
    ImageFolder,
    RandomPatches,
    SRPairs,
    embedded_photos,
    load_folder,
)
from restorelab.io import ImageReadError, write_image
from restorelab.train import StepSampler


def test_embedded_split_is_fixed_and_disjoint():
    assert not set(TRAIN_PHOTOS) & set(VAL_PHOTOS)
    val = embedded_photos("val")
    assert len(val) == len(VAL_PHOTOS)
    assert all(im.shape[0] == 3 and im.dtype == torch.float32 for im in val)
    assert all(0 <= im.min() and im.max() <= 1 for im in val)
    with pytest.raises(ValueError, match="split"):
        embedded_photos("test")


def test_random_patches_are_deterministic_per_index():
    images = [torch.rand(3, 40, 50), torch.rand(3, 60, 30)]
    a, b = RandomPatches(images, 16, seed=3), RandomPatches(images, 16, seed=3)
    assert torch.equal(a[7], b[7])
    assert not torch.equal(a[7], a[8])
    assert not torch.equal(a[7], RandomPatches(images, 16, seed=4)[7])
    assert a[123456789].shape == (3, 16, 16)


def test_random_patches_use_every_image_and_augment():
    images = [torch.zeros(1, 20, 20), torch.ones(1, 20, 20)]
    means = {float(RandomPatches(images, 8)[i].mean()) for i in range(40)}
    assert means == {0.0, 1.0}
    ramp = torch.arange(64.0).reshape(1, 8, 8) / 64
    orientations = {tuple(RandomPatches([ramp], 8)[i][0, 0, :2].tolist()) for i in range(60)}
    assert len(orientations) == 8  # all flips/rotations occur


def test_patch_size_larger_than_image_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the 32px"):
        RandomPatches([torch.rand(3, 20, 40)], 32)


def test_sr_pairs_shapes_and_bicubic():
    lr, hr = SRPairs([torch.rand(3, 64, 64)], scale=4, patch_size=32)[0]
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 8, 8)
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit like benchmark LR files
    with pytest.raises(ValueError, match="multiple"):
        SRPairs([torch.rand(3, 64, 64)], scale=3, patch_size=32)


def test_same_batches_with_and_without_workers():
    data = RandomPatches([torch.rand(3, 40, 40)], 8, seed=1)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(
            data, batch_size=4, sampler=StepSampler(len(data), 8, 24, 1), num_workers=workers
        )
        batches.append(torch.cat(list(loader)))
    assert torch.equal(*batches)


def test_step_sampler_epochs_are_permutations():
    sampler = StepSampler(dataset_length=5, start=0, stop=15, seed=0)
    indices = list(sampler)
    for epoch in range(3):
        assert sorted(indices[5 * epoch : 5 * epoch + 5]) == list(range(5))
    assert list(StepSampler(5, 7, 15, 0)) == indices[7:]


def test_folder_dataset_and_errors(tmp_path):
    write_image(tmp_path / "b.png", torch.rand(3, 8, 9))
    write_image(tmp_path / "a.png", torch.rand(3, 8, 9))
    folder = ImageFolder(tmp_path)
    assert [name for _, name in folder] == ["a.png", "b.png"]
    assert load_folder(tmp_path)[0].dtype == torch.uint8
    (tmp_path / "c.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="c.png"):
        load_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolder(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)


def test_download_registry_names_the_files_of_the_local_benchmarks(datasets_dir):
    """What `download=True` fetches in Colab has the same images as the course's local copies."""
    from pathlib import Path

    from restorelab.data import BENCHMARKS

    compared = 0
    for name, spec in BENCHMARKS.items():
        folder = datasets_dir / name
        if not folder.is_dir():
            continue  # e.g. Train400, a training set only downloaded
        local = {p.stem for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
        assert {Path(f).stem for f in spec["files"]} == local, name
        compared += 1
    assert compared >= 6


def test_training_images_from_every_kind_of_source(tmp_path, datasets_dir):
    from restorelab.data import embedded_photos, training_images
    from restorelab.io import write_image

    assert len(training_images("embedded")) == len(embedded_photos("train"))
    classic5 = training_images("Classic5")  # a registered set, found in ../shared
    assert len(classic5) == 5 and classic5[0].shape[0] == 1
    write_image(tmp_path / "a.png", torch.rand(3, 8, 8))
    (folder_image,) = training_images(str(tmp_path))
    assert folder_image.dtype == torch.uint8 and folder_image.shape == (3, 8, 8)
    with pytest.raises(FileNotFoundError, match="neither"):
        training_images(str(tmp_path / "missing"))



def test_exclude_leaves_out_the_photos_that_resemble_a_benchmark_image():
    from restorelab.data import BENCHMARKS, LEAKS_INTO_BENCHMARKS, load_photo, training_images
    from restorelab.io import to_tensor

    assert all(where.split()[0] in BENCHMARKS for where in LEAKS_INTO_BENCHMARKS.values())
    camera = to_tensor(load_photo("camera"))
    kept = embedded_photos("train", mode="any", exclude=LEAKS_INTO_BENCHMARKS)
    assert len(kept) == len(TRAIN_PHOTOS) - len(LEAKS_INTO_BENCHMARKS)
    assert not any(image.shape == camera.shape and torch.equal(image, camera) for image in kept)
    assert len(training_images("embedded", exclude=LEAKS_INTO_BENCHMARKS)) == len(kept)
    with pytest.raises(KeyError, match="exclude: unknown embedded photos \\['cameraman'\\]"):
        embedded_photos("train", exclude=["cameraman"])
