"""Data pipeline throughput: per-sample PIL/numpy Dataset vs restorelab's batched tensor pipeline,
and the Trainer's two samplers.

Run: ``python benchmarks/data_pipeline.py [--batches 20]``. Writes
``benchmarks/results/data_pipeline.{json,md}`` and ``benchmarks/results/synthetic_pairs.png``.

Both pipelines make the same training pairs from the photos shipped with scikit-image: a random
128x128 crop, a random flip / 90-degree turn, Gaussian noise with sigma drawn per sample in
[0, 50] (8-bit levels) and JPEG at a quality drawn per sample in [30, 95]; batch 32.

(a) "student": a torch ``Dataset`` doing all of it in ``__getitem__`` with PIL and numpy, one
    sample at a time, batched by a ``DataLoader``;
(b) restorelab: the crops, flips, noise and JPEG run on whole batches of tensors
    (:func:`restorelab.augment.random_crops`, :func:`~restorelab.augment.paired_flip_rotate`,
    :func:`restorelab.degrade.gaussian_noise`, :func:`restorelab.degrade.jpeg`).

Both run in the main process (DataLoader ``num_workers=0``) on one CPU thread by default
(``--threads``; PIL and numpy use one anyway, and on a shared 2-core machine torch's spinning
intra-op threads slow down badly when the other core is busy), and both keep the decoded photos
in memory, so the comparison is the pipeline itself. Workers would speed both up about equally.

The Trainer's samplers (chapter 5, issue 18), on the same dataset (``RandomPatches`` of the
embedded training photos, 128x128 patches, random flips and turns, batch 32): ``sampler="loader"``
(a ``DataLoader`` over the ``StepSampler``, one patch per index in Python, ``num_workers=0``)
against ``sampler="device"`` (the dataset's ``on_device``: a ``DevicePatches`` cutting the whole
batch with one gather), in patches per second, on the CPU (and on CUDA when there is one).

Also measured: pages per second of the scan simulator (synthetic page + scan_damage), and of
augraphy's when it is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from report import RESULTS, machine, save
from torch.utils.data import DataLoader, Dataset

from restorelab.augment import paired_flip_rotate, random_crops
from restorelab.data import RandomPatches, embedded_photos
from restorelab.data.pages import SyntheticScans, render_page
from restorelab.degrade import gaussian_noise, jpeg, make_generator, scan_damage
from restorelab.train import StepSampler

PATCH, BATCH, SIGMA, QUALITY = 128, 32, (0.0, 50.0), (30, 95)


def photos_uint8() -> list[np.ndarray]:
    """The training photos as uint8 (H, W, 3) arrays."""
    return [im.mul(255).round().byte().permute(1, 2, 0).numpy() for im in embedded_photos("train")]


def _to_chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


class StudentPairs(Dataset):
    """(noisy JPEG, clean) pairs made one at a time with PIL and numpy, as students write it."""

    def __init__(self, photos: list[np.ndarray], length: int, seed: int = 0) -> None:
        self.photos, self.length, self.seed = photos, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        image = Image.fromarray(self.photos[rng.integers(len(self.photos))])
        left = int(rng.integers(image.width - PATCH + 1))
        top = int(rng.integers(image.height - PATCH + 1))
        patch = image.crop((left, top, left + PATCH, top + PATCH))
        if rng.random() < 0.5:
            patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        patch = patch.rotate(90 * int(rng.integers(4)))
        clean = np.asarray(patch, dtype=np.float32) / 255
        noisy = clean + rng.normal(0, rng.uniform(*SIGMA) / 255, clean.shape)
        noisy = (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(
            buffer, "JPEG", quality=int(rng.integers(QUALITY[0], QUALITY[1] + 1))
        )
        buffer.seek(0)
        degraded = np.asarray(Image.open(buffer), dtype=np.float32) / 255
        return _to_chw(degraded), _to_chw(clean)


def batched_pairs(sources: list[torch.Tensor], batches: int, device: torch.device, seed: int = 0):
    """restorelab's pipeline: every step works on the whole batch; batch k from (seed, k)."""
    for k in range(batches):
        generator = make_generator(seed, k, device=device)
        (crops,) = paired_flip_rotate([random_crops(sources, BATCH, PATCH, generator)], generator)
        clean = crops.float().div_(255)  # crops and flips move uint8, 4x less memory than float
        noisy = gaussian_noise(clean, SIGMA, generator, clip=True)
        yield jpeg(noisy, QUALITY, generator), clean


def rate(batches, count: int, warmup: int = 2, sync: bool = False) -> float:
    """Samples per second over ``count`` batches (tensors, or tuples of them) after ``warmup``."""
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    started = time.perf_counter()
    samples = 0
    for _ in range(count):
        batch = next(iterator)
        samples += (batch[0] if isinstance(batch, (tuple, list)) else batch).shape[0]
    if sync:
        torch.cuda.synchronize()
    return samples / (time.perf_counter() - started)


def measure_pipelines(batches: int) -> list[dict]:
    photos = photos_uint8()
    rows = []
    student = DataLoader(
        StudentPairs(photos, (batches + 2) * BATCH), batch_size=BATCH, num_workers=0
    )
    rows.append(
        {
            "pipeline": "(a) per-sample PIL/numpy Dataset",
            "device": "cpu",
            "samples_per_second": rate(student, batches),
        }
    )
    for device in _devices():
        sources = [torch.from_numpy(p).permute(2, 0, 1).contiguous().to(device) for p in photos]
        pipeline = batched_pairs(sources, batches + 2, device)
        sps = rate(pipeline, batches, sync=device.type == "cuda")
        rows.append(
            {"pipeline": "(b) restorelab batched", "device": device.type, "samples_per_second": sps}
        )
    return rows


def _devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def measure_samplers(batches: int) -> list[dict]:
    """Training patches per second of the Trainer's loader path and of its device sampler."""
    dataset = RandomPatches(embedded_photos("train"), PATCH)
    positions = StepSampler(len(dataset), 0, (batches + 2) * BATCH, dataset.seed, BATCH)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=positions, num_workers=0)
    rows = [{"sampler": "loader (RandomPatches + DataLoader)", "device": "cpu",
             "patches_per_second": rate(loader, batches)}]  # fmt: skip
    for device in _devices():
        source = dataset.on_device(device)
        steps = (source.batch(step, BATCH) for step in range(batches + 2))
        rows.append({"sampler": "device (RandomPatches.on_device)", "device": device.type,
                     "patches_per_second": rate(steps, batches, sync=device.type == "cuda")})  # fmt: skip
    return rows


def measure_pages(size: tuple[int, int], count: int) -> list[dict]:
    rows = []
    dataset = SyntheticScans(count + 1, size, seed=0)
    dataset[count]  # warm-up: fonts and photos load once
    started = time.perf_counter()
    for i in range(count):
        dataset[i]
    rows.append(
        {
            "simulator": "SyntheticScans item (render page + back page + scan_damage)",
            "pages_per_second": count / (time.perf_counter() - started),
        }
    )
    started = time.perf_counter()
    pages = [render_page(size, np.random.default_rng([1, i])) for i in range(count)]
    rows.append(
        {
            "simulator": "render_page only",
            "pages_per_second": count / (time.perf_counter() - started),
        }
    )
    clean = torch.stack([torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in pages])
    started = time.perf_counter()
    scan_damage(clean, make_generator(0))
    rows.append(
        {
            "simulator": f"scan_damage only, batch of {count}",
            "pages_per_second": count / (time.perf_counter() - started),
        }
    )
    installed = importlib.util.find_spec("augraphy") is not None
    rows.append(
        {
            "simulator": "augraphy",
            "pages_per_second": None,
            "note": "installed, not measured" if installed else "not installed",
        }
    )
    return rows


def save_figure(path: Path, size: tuple[int, int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = SyntheticScans(4, size, seed=2024)
    pairs = [dataset[i] for i in range(4)]
    h, w = size
    figure, axes = plt.subplots(3, 4, figsize=(16, 16 * (2 * h / w + 0.5) / 4 + 0.4),
                                gridspec_kw={"height_ratios": [h / w, h / w, 0.5]})  # fmt: skip
    for k, (scan, clean) in enumerate(pairs):
        row, col = divmod(k, 2)
        for j, (image, label) in enumerate(((scan, "scan"), (clean, "clean"))):
            axis = axes[row, 2 * col + j]
            axis.imshow(image.permute(1, 2, 0).numpy())
            axis.set_title(f"page {k + 1}: {label}", fontsize=11)
    side = w * 2 // 5  # zoomed windows: a piece of the first column (text, often a photo)
    for k, (page, top) in enumerate(((0, h // 2), (2, h * 3 // 5))):
        for j, (image, label) in enumerate(zip(pairs[page], ("scan", "clean"), strict=True)):
            crop = image[:, top : top + side // 2, w // 20 : w // 20 + side]
            axes[2, 2 * k + j].imshow(crop.permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[2, 2 * k + j].set_title(f"page {page + 1} {label}, zoomed", fontsize=11)
    for axis in axes.flat:
        axis.set_axis_off()
    figure.suptitle(
        "Synthetic magazine pages (restorelab.data.SyntheticScans) and their simulated scans"
    )
    figure.tight_layout(rect=(0, 0, 1, 0.975))
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--page-size", type=int, nargs=2, default=(724, 512), metavar=("H", "W"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.page_size)
    pipelines = measure_pipelines(args.batches)
    samplers = measure_samplers(args.batches)
    pages = measure_pages(size, args.pages)
    cpu = [r["samples_per_second"] for r in pipelines if r["device"] == "cpu"]
    speedup = cpu[1] / cpu[0]
    on_cpu = [r["patches_per_second"] for r in samplers if r["device"] == "cpu"]
    sampler_speedup = on_cpu[1] / on_cpu[0]
    RESULTS.mkdir(exist_ok=True)
    save_figure(RESULTS / "synthetic_pairs.png", size)
    report = {
        "device": machine(),
        "torch": torch.__version__,
        "patch": PATCH,
        "batch_size": BATCH,
        "noise_sigma": SIGMA,
        "jpeg_quality": QUALITY,
        "dataloader_workers": 0,
        "pipelines": pipelines,
        "speedup_cpu": speedup,
        "samplers": samplers,
        "sampler_speedup_cpu": sampler_speedup,
        "page_size": size,
        "pages": pages,
    }
    lines = [
        f"Data pipeline throughput on {machine()}, torch {torch.__version__}: {PATCH}x{PATCH} "
        f"crops + flip/turn + Gaussian noise (sigma {SIGMA[0]:g}-{SIGMA[1]:g}) + JPEG "
        f"(quality {QUALITY[0]}-{QUALITY[1]}), batch {BATCH}, DataLoader num_workers=0",
        "",
        "| pipeline | device | samples/s |",
        "|---|---|---|",
        *(
            f"| {r['pipeline']} | {r['device']} | {r['samples_per_second']:.0f} |"
            for r in pipelines
        ),
        "",
        f"Speedup of (b) over (a) on CPU: {speedup:.1f}x",
        "",
        f"The Trainer's samplers on the same dataset: {PATCH}x{PATCH} patches of the embedded "
        f"training photos with random flips and turns (no degradation), batch {BATCH}:",
        "",
        "| sampler | device | patches/s |",
        "|---|---|---|",
        *(f"| {r['sampler']} | {r['device']} | {r['patches_per_second']:.0f} |" for r in samplers),
        "",
        f"Speedup of the device sampler over the loader on CPU: {sampler_speedup:.1f}x",
        "",
        f"Scan simulator, {size[0]}x{size[1]} pages (H x W):",
        "",
        "| simulator | pages/s |",
        "|---|---|",
        *(
            f"| {r['simulator']} | {r['pages_per_second']:.2f} |"
            if r["pages_per_second"] is not None
            else f"| {r['simulator']} | - ({r['note']}) |"
            for r in pages
        ),
        "",
        "![synthetic pairs](synthetic_pairs.png)",
    ]
    save("data_pipeline", report, lines)


if __name__ == "__main__":
    main()
