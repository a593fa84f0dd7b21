"""Set up a competition from paired (scan, clean) images: a public folder and a private one.

Taught in the course appendix ("Running the competition"); chapter 9 is the students' side.

``make(pairs, out, test_count, seed)`` writes::

    out/public/train/scan/NAME.png, out/public/train/clean/NAME.png   training pairs
    out/public/test/scan/NAME.png                                      the scans to restore
    out/public/sample_submission.csv        the 2023 CSV format, filled with the scans' mean Y
    out/public/competition.json             the rules: metric, parameter limit, test names, sizes
    out/private/test/clean/NAME.png         the truth (folder mode 0700)
    out/private/manifest.json               seed, split, source, and the sha256 of every file
                                            (by folder: "public" and "private", relative paths)

The test split is ``numpy.random.default_rng(seed).permutation(len(pairs))[:test_count]``; the
seed and the split are recorded in the private manifest. Scoring the public ``test/scan``
folder itself as a submission gives the "do nothing" baseline.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from restorelab import __version__
from restorelab.io import file_sha256, to_uint8, write_image
from restorelab.metrics import full_range_y

PARAMETER_LIMIT = 10_000_000
CSV_HEADER = ("Image File", "Y Channel Value")
METRIC = "Y-MAE: mean |Y_restored - Y_clean| over all test pixels, full-range 8-bit Y (0.299 R + 0.587 G + 0.114 B)"
CSV_METRIC = (
    "mean-Y MAE (2023 CSV format): mean over test images of |mean Y submitted - mean Y clean|"
)


def mean_y(image: torch.Tensor) -> float:
    """Mean full-range 8-bit Y of a (C, H, W) [0, 1] image: the 2023 CSV's value."""
    return float(full_range_y(image).double().mean())


def write_mean_y_csv(values: Mapping[str, float], path: str | Path) -> Path:
    """The 2023 CSV: a header ``Image File, Y Channel Value``, then one row per item of
    ``values`` (file name -> the image's mean Y, :func:`mean_y`), 4 decimals. Written
    atomically; returns ``path``. Chapter 9 writes one for its restored test scans."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        rows = [(name, f"{value:.4f}") for name, value in values.items()]
        csv.writer(handle).writerows([CSV_HEADER, *rows])
    os.replace(tmp, path)
    return path


def pair_names(pairs: Sequence) -> list[str]:
    """The pairs' names (``pairs.names`` of a PairedFolder), else ``page_0000``, ``page_0001``..."""
    names = list(getattr(pairs, "names", None) or [f"page_{i:04d}" for i in range(len(pairs))])
    if len(set(names)) != len(names) or len(names) != len(pairs):
        raise ValueError("the pairs need one distinct name each")
    return names


def _write(root: Path, relative: str, image: torch.Tensor, files: dict[str, str]) -> None:
    """Write ``image`` to ``root/relative`` (mode 0644) and record its sha256 under ``relative``."""
    path = write_image(root / relative, image)
    os.chmod(path, 0o644)
    files[relative] = file_sha256(path)


def _json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def make(
    pairs: Sequence,
    out: str | Path,
    test_count: int,
    seed: int = 0,
    source: str = "",
) -> dict:
    """Write the public and private folders of a competition from ``pairs`` (see module doc).

    ``pairs[i]`` is ``(scan, clean)``, float (3, H, W) in [0, 1] (a
    :class:`restorelab.data.PairedFolder` or :class:`restorelab.data.SyntheticScans`).
    ``source`` describes where the pairs came from (recorded privately). Returns the manifest.
    Everything is written in a temporary folder inside ``out`` and renamed into place at the
    end: a failure (a pair of two sizes, a full disk) leaves no ``public`` or ``private`` there,
    so the rerun starts afresh.
    """
    out = Path(out)
    names = pair_names(pairs)
    what = source or "the source"
    if len(names) < 2:
        raise ValueError(
            f"a competition needs at least 2 pairs (one to train on, one to test); {what} has "
            f"{len(names)}"
        )
    if not 0 < test_count < len(names):
        raise ValueError(
            f"{what} has {len(names)} pairs: test_count must be from 1 to {len(names) - 1} "
            f"(--test: the pairs held out; at least one is left to train on), got {test_count}"
        )
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"{out}: a file, not a folder; choose a folder for the competition"
        )
    for folder in (out / "public", out / "private"):
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder}: already holds files; choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".making-", dir=out))  # renamed into place at the end
    try:
        manifest = _write_all(pairs, names, work, test_count, seed, source)
        for side in ("private", "public"):
            os.replace(work / side, out / side)  # an empty folder of that name is replaced
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _write_all(
    pairs: Sequence, names: list[str], work: Path, test_count: int, seed: int, source: str
) -> dict:
    """Write ``work/public`` and ``work/private`` (see :func:`make`); returns the manifest."""
    public, private = work / "public", work / "private"
    order = np.random.default_rng(seed).permutation(len(names))
    test = sorted(int(i) for i in order[:test_count])
    split = {names[i]: ("test" if i in set(test) else "train") for i in range(len(names))}
    private.mkdir()
    os.chmod(private, 0o700)
    public.mkdir()
    files: dict[str, dict[str, str]] = {"public": {}, "private": {}}
    sizes, sample = {}, {}
    for index, name in enumerate(names):
        scan, clean = pairs[index]
        if scan.shape != clean.shape:
            raise ValueError(
                f"{name}: scan {tuple(scan.shape)} and clean {tuple(clean.shape)} differ"
            )
        file = f"{name}.png"
        if split[name] == "train":
            _write(public, f"train/scan/{file}", scan, files["public"])
            _write(public, f"train/clean/{file}", clean, files["public"])
            continue
        _write(public, f"test/scan/{file}", scan, files["public"])
        _write(private, f"test/clean/{file}", clean, files["private"])
        sizes[file] = list(to_uint8(clean).shape[:2])
        sample[file] = mean_y(scan)
    write_mean_y_csv(sample, public / "sample_submission.csv")
    rules = {
        "metric": METRIC,
        "csv_metric": CSV_METRIC,
        "parameter_limit": PARAMETER_LIMIT,
        "test_images": sizes,  # file name -> [height, width]
        "train_pairs": sum(v == "train" for v in split.values()),
    }
    _json(public / "competition.json", rules)
    for folder in (public, *[p for p in public.rglob("*") if p.is_dir()]):
        os.chmod(folder, 0o755)
    manifest = {
        "restorelab": __version__,
        "source": source,
        "seed": seed,
        "split": split,
        "test": sorted(sizes),
        "sizes": sizes,
        "sha256": files,
    }
    _json(private / "manifest.json", manifest)
    return manifest


def synthetic_pairs(pages: int, size: int, page_seed: int):
    """``pages`` synthetic magazine pages and their scans (:class:`restorelab.data.SyntheticScans`)."""
    from restorelab.data import SyntheticScans

    return SyntheticScans(pages, size=size, seed=page_seed)
