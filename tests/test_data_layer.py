"""Paired augmentation, paired folders, Arrow images, prefetching, synthetic scans: exactness,
clear errors and reproducibility with and without DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from restorelab import augment as A
from restorelab.data import (
    ArrowImages,
    DegradedFolder,
    PairedFolder,
    PairedPatches,
    Prefetcher,
    SyntheticScans,
    course2023,
    descan18k,
    download_descan18k,
)
from restorelab.degrade import gaussian_noise, jpeg, make_generator
from restorelab.io import ImageReadError, to_tensor, write_image


def _images(n: int, size: tuple[int, int] = (20, 24), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


# augmentation ----------------------------------------------------------------------------------


def test_crops_and_flips_are_pixel_exact_for_input_and_target():
    lr = torch.rand(16, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    hr = lr.repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest x2: hr is lr, enlarged
    g = make_generator(0)
    top, left = A.crop_positions(16, (24, 24), 10, g)
    lr_c, hr_c = A.crop_at(lr, top, left, 10), A.crop_at(hr, top * 2, left * 2, 20)
    lr_f, hr_f, same = A.paired_flip_rotate([lr_c, hr_c, lr_c.clone()], g)
    assert lr_f.shape == (16, 3, 10, 10) and hr_f.shape == (16, 3, 20, 20)
    assert torch.equal(hr_f, lr_f.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert torch.equal(same, lr_f)
    # the positions differ within the batch, and each crop is found in its source at one offset
    assert len(set(zip(top.tolist(), left.tolist(), strict=True))) > 8
    for k in range(16):
        hits = [
            (t, s)
            for t in range(15)
            for s in range(15)
            if torch.equal(lr[k, :, t : t + 10, s : s + 10], lr_c[k])
        ]
        assert hits == [(top[k].item(), left[k].item())]
    with pytest.raises(ValueError, match="larger than the 24x24"):
        A.crop_positions(4, (24, 24), 25)


def test_flips_cover_the_eight_symmetries_and_are_per_sample():
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(64, 1, 4, 4)
    (out,) = A.paired_flip_rotate([x], make_generator(0))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8
    rect = torch.rand(8, 1, 4, 6)
    (flipped,) = A.paired_flip_rotate([rect], make_generator(0))  # non-square: flips only
    assert flipped.shape == rect.shape


def test_random_crops_from_images_of_any_size():
    images = [torch.from_numpy(a).permute(2, 0, 1) for a in _images(3, (40, 30))]
    crops = A.random_crops(images, 12, 16, make_generator(0))
    assert crops.shape == (12, 3, 16, 16) and crops.dtype == torch.uint8
    assert torch.equal(crops, A.random_crops(images, 12, 16, make_generator(0)))
    with pytest.raises(ValueError, match="smaller"):
        A.random_crops(images, 2, 64, make_generator(0))


def test_color_jitter_is_per_sample_bounded_and_identity_at_zero():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = A.color_jitter(x, make_generator(0), 0.3, 0.3, 0.3, 0.1)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, A.color_jitter(x, make_generator(0), 0.3, 0.3, 0.3, 0.1))
    assert len({round(float(v), 5) for v in (out - x).mean((1, 2, 3))}) == 6
    same = A.color_jitter(x, make_generator(0), 0.0, 0.0, 0.0, 0.0)
    assert torch.allclose(same, x, atol=1e-5)
    grey = A.color_jitter(x[:, :1], make_generator(0))
    assert grey.shape == (6, 1, 16, 16)
    assert torch.allclose(A.hue_matrices(torch.tensor([1.0]))[0], torch.eye(3), atol=1e-5)


# paired folders --------------------------------------------------------------------------------


def _write_pairs(root, names, size=(20, 24), seed=0):
    for folder, offset in (("scan", 0), ("clean", 1)):
        for name, array in zip(names, _images(len(names), size, seed + offset), strict=True):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / folder / name)


def test_paired_folder_matches_by_name(tmp_path):
    _write_pairs(tmp_path, ["b.png", "a.png", "c.png"])
    (tmp_path / "clean" / "c.png").rename(tmp_path / "clean" / "c.bmp")  # suffixes may differ
    pairs = PairedFolder(tmp_path)
    assert pairs.names == ["a", "b", "c"] and len(pairs) == 3
    scan, clean = pairs[0]
    assert scan.shape == clean.shape == (3, 20, 24)
    assert torch.equal(scan, to_tensor(np.asarray(Image.open(tmp_path / "scan" / "a.png"))))


def test_paired_folder_lists_unmatched_names(tmp_path):
    _write_pairs(tmp_path, ["a.png", "b.png"])
    Image.fromarray(_images(1)[0]).save(tmp_path / "scan" / "only_scan.png")
    Image.fromarray(_images(1)[0]).save(tmp_path / "clean" / "only_clean.png")
    with pytest.raises(ValueError, match="only_scan.png") as error:
        PairedFolder(tmp_path)
    assert "only_clean.png" in str(error.value) and "only in clean/" in str(error.value)


def test_corrupt_file_raises_image_read_error_naming_it(tmp_path):
    _write_pairs(tmp_path, ["a.png", "b.png"])
    (tmp_path / "clean" / "b.png").write_bytes(b"not a png at all")
    pairs = PairedFolder(tmp_path)
    pairs[0]
    with pytest.raises(ImageReadError, match="b.png"):
        pairs[1]


def test_course_2023_and_descan_layouts(tmp_path):
    _write_pairs(tmp_path / "c23" / "train", ["p1.png", "p2.png"])
    write_image(tmp_path / "c23" / "test" / "scan" / "t1.png", torch.rand(3, 8, 8))
    train, test = course2023(tmp_path / "c23")
    assert len(train) == 2 and test[0][1] == "t1.png"
    for split in ("train", "valid", "test"):
        _write_pairs(tmp_path / "dl" / "DESCAN-18K" / split, ["image1.tif", "image2.tif"])
    assert len(descan18k(tmp_path / "dl", "valid")) == 2  # found one folder down
    assert download_descan18k(tmp_path / "dl").name == "DESCAN-18K"  # already there: no download
    with pytest.raises(ValueError, match="split"):
        descan18k(tmp_path / "dl", "val")
    with pytest.raises(FileNotFoundError, match="download_descan18k"):
        descan18k(tmp_path / "c23" / "test")


def test_descan_download_offline_raises_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(RuntimeError, match="ENCLab/DESCAN-18K.*offline"):
        download_descan18k(tmp_path / "none")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        download_descan18k(tmp_path / "none")


def test_paired_patches_and_degraded_folder_are_deterministic(tmp_path):
    _write_pairs(tmp_path, ["a.png", "b.png"], size=(32, 40))
    patches = PairedPatches(PairedFolder(tmp_path), 16, length=10, seed=5)
    scan, clean = patches[3]
    assert scan.shape == clean.shape == (3, 16, 16)
    assert torch.equal(patches[3][0], scan) and not torch.equal(patches[4][0], scan)

    def degrade(batch, generator):
        return jpeg(gaussian_noise(batch, (5, 30), generator, clip=True), (20, 80), generator)

    hr = DegradedFolder(tmp_path / "clean", 16, degrade, length=10, seed=1)
    noisy, clean = hr[2]
    assert noisy.shape == clean.shape == (3, 16, 16)
    again = DegradedFolder(tmp_path / "clean", 16, degrade, length=10, seed=1)[2]
    assert torch.equal(again[0], noisy) and torch.equal(again[1], clean)


# Arrow -----------------------------------------------------------------------------------------


def test_arrow_round_trip_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    arrays = _images(3, (12, 10))
    table = {
        "scan": [Image.fromarray(a) for a in arrays],
        "clean": [Image.fromarray(255 - a) for a in arrays],
        "id": [0, 1, 2],
    }
    features = datasets.Features(
        {"scan": datasets.Image(), "clean": datasets.Image(), "id": datasets.Value("int64")}
    )
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "ds"))
    images = ArrowImages(tmp_path / "ds", columns=("scan", "clean"))
    assert len(images) == 3 and images.columns == ["scan", "clean"]
    scan, clean = images[2]
    assert torch.equal(scan, to_tensor(arrays[2])) and torch.equal(
        clean, to_tensor(255 - arrays[2])
    )
    assert len(ArrowImages(tmp_path / "ds").columns) == 2  # image columns found by type
    with pytest.raises(TypeError, match="id"):
        ArrowImages(tmp_path / "ds", columns="id")


@pytest.mark.parametrize("writer", ["file", "stream"])
def test_arrow_round_trip_with_pyarrow(tmp_path, writer):
    import io

    pa = pytest.importorskip("pyarrow")
    arrays = _images(4, (9, 7))
    encoded = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    encoded[3] = b"broken"
    table = pa.table({"image": pa.array(encoded, pa.binary())})
    path = tmp_path / "images.arrow"
    with pa.OSFile(str(path), "wb") as sink:
        open_writer = pa.ipc.new_file if writer == "file" else pa.ipc.new_stream
        with open_writer(sink, table.schema) as out:
            out.write_table(table)
    images = ArrowImages(path)
    assert all(torch.equal(images[i], to_tensor(arrays[i])) for i in range(3))
    with pytest.raises(ImageReadError, match="row 3"):
        images[3]
    loaded = list(
        DataLoader(torch.utils.data.Subset(images, [0, 1, 2]), batch_size=3, num_workers=0)
    )
    assert loaded[0].shape == (3, 3, 9, 7)


# prefetching -----------------------------------------------------------------------------------


def test_prefetcher_yields_the_same_batches_as_the_iterable():
    batches = [
        (
            torch.full((2, 3), float(k)),
            {"mask": torch.ones(2) * k, "name": f"b{k}"},
            [torch.zeros(1)],
        )
        for k in range(5)
    ]
    got = list(Prefetcher(batches, "cpu", depth=2))
    assert len(got) == 5
    for a, b in zip(got, batches, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1]["mask"], b[1]["mask"])
        assert a[1]["name"] == b[1]["name"] and torch.equal(a[2][0], b[2][0])
    loader = DataLoader(SyntheticScans(4, 32, seed=3), batch_size=2)
    plain, fetched = list(loader), list(Prefetcher(loader, "cpu"))
    assert all(
        torch.equal(p[0], f[0]) and torch.equal(p[1], f[1])
        for p, f in zip(plain, fetched, strict=True)
    )
    assert len(Prefetcher(loader, "cpu")) == 2


def test_prefetcher_raises_loading_errors_and_can_stop_early():
    def broken():
        yield torch.zeros(1)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher(broken(), "cpu"))
    for batch in Prefetcher(range(1000), "cpu", depth=1):
        if batch == 3:
            break


# synthetic scans -------------------------------------------------------------------------------


def test_synthetic_scans_pairs_are_deterministic_and_sized():
    pages = SyntheticScans(3, (96, 64), seed=11)
    scan, clean = pages[1]
    assert scan.shape == clean.shape == (3, 96, 64)
    assert scan.dtype == clean.dtype == torch.float32
    assert 0 <= scan.min() and scan.max() <= 1 and 0 <= clean.min() and clean.max() <= 1
    again = SyntheticScans(3, (96, 64), seed=11)[1]
    assert torch.equal(again[0], scan) and torch.equal(again[1], clean)
    assert not torch.equal(pages[2][1], clean)
    assert (scan - clean).abs().mean() > 0.01
    assert clean.std() > 0.1  # a real layout: ink, photos and paper
    with pytest.raises(IndexError):
        pages[3]


def test_same_batches_with_and_without_workers():
    pages = SyntheticScans(4, 48, seed=2)
    plain = list(DataLoader(pages, batch_size=2, num_workers=0))
    workers = list(DataLoader(pages, batch_size=2, num_workers=2))
    for a, b in zip(plain, workers, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
