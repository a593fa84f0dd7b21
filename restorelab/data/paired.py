"""Paired image folders: scans and their clean originals, the course layouts, DESCAN-18K, and HR
folders degraded on the fly.

Taught in chapter 9 (descanning) and used from chapter 2 on for HR-only sets (DIV2K style).
Files are matched by name without the suffix (``page_001.jpg`` pairs with ``page_001.png``);
unmatched names are listed in the error. Images are read lazily as float32 (C, H, W) in [0, 1];
a corrupt file raises :class:`restorelab.io.ImageReadError` naming it.

Layouts:

* ``root/scan`` + ``root/clean`` (:class:`PairedFolder`);
* the 2023 course competition: ``train/scan``, ``train/clean``, ``test/scan``
  (:func:`course2023`);
* DESCAN-18K: ``train|valid|test/scan|clean`` with ``.tif`` pages (:func:`descan18k`), fetched
  from the Hugging Face dataset ``ENCLab/DESCAN-18K`` by :func:`download_descan18k`.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from restorelab.augment import apply_flip_rotate
from restorelab.data.datasets import ImageFolder
from restorelab.data.device_patches import DevicePatches
from restorelab.degrade.params import make_generator
from restorelab.io import list_images, read_image, to_levels

DESCAN_REPO = "ENCLab/DESCAN-18K"
DESCAN_SPLITS = ("train", "valid", "test")


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            raise ValueError(f"{folder}: {files[path.stem].name} and {path.name} share a name")
        files[path.stem] = path
    return files


def _listing(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


class PairedFolder(Dataset):
    """(input, target) image pairs from two sibling folders, matched by file name.

    ``root/input_dir`` holds the degraded images (scans), ``root/target_dir`` the originals.
    Item i: ``(input, target)`` float32 (C, H, W) in [0, 1]; ``names[i]`` is the shared name.
    ``transform(input, target) -> (input, target)`` runs on each pair when given.
    """

    def __init__(
        self,
        root: str | Path,
        input_dir: str = "scan",
        target_dir: str = "clean",
        mode: str = "rgb",
        transform: Callable[[torch.Tensor, torch.Tensor], tuple] | None = None,
    ) -> None:
        root = Path(root)
        inputs, targets = _by_stem(root / input_dir), _by_stem(root / target_dir)
        only_in, only_tg = sorted(set(inputs) - set(targets)), sorted(set(targets) - set(inputs))
        if only_in or only_tg:
            lines = [f"{root}: {input_dir}/ and {target_dir}/ do not match"]
            if only_in:
                lines.append(f"only in {input_dir}/: {_listing([inputs[s].name for s in only_in])}")
            if only_tg:
                lines.append(
                    f"only in {target_dir}/: {_listing([targets[s].name for s in only_tg])}"
                )
            raise ValueError("; ".join(lines))
        self.names = sorted(inputs)
        self.inputs = [inputs[s] for s in self.names]
        self.targets = [targets[s] for s in self.names]
        self.mode, self.transform = mode, transform

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source = read_image(self.inputs[index], self.mode)
        target = read_image(self.targets[index], self.mode)
        if source.shape != target.shape:
            raise ValueError(
                f"{self.inputs[index]} is {tuple(source.shape)} but {self.targets[index]} is "
                f"{tuple(target.shape)}: the pair must have one size"
            )
        if self.transform is not None:
            source, target = self.transform(source, target)
        return source, target


class PairedPatches(Dataset):
    """Random aligned patches of a paired dataset, with flips and turns, deterministic per index.

    Item i: ``(input, target)`` patches (C, patch, patch), drawn from pair ``rng.integers(len)``
    of ``pairs`` with ``rng = numpy.random.default_rng([seed, i])``: the same for the same
    (seed, i) with or without DataLoader workers.
    """

    def __init__(
        self, pairs: Dataset, patch_size: int, length: int, seed: int = 0, augment: bool = True
    ) -> None:
        self.pairs, self.patch_size, self.length = pairs, patch_size, length
        self.seed, self.augment = seed, augment

    def __len__(self) -> int:
        return self.length

    def _check(self, k: int, source: torch.Tensor) -> None:
        h, w = source.shape[-2:]
        if min(h, w) < self.patch_size:
            name = self.pairs.inputs[k] if hasattr(self.pairs, "inputs") else f"pair {k}"
            raise ValueError(f"{name}: a {h}x{w} pair, smaller than the {self.patch_size}px patch")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.integers(len(self.pairs)))
        source, target = self.pairs[k]
        self._check(k, source)
        h, w = source.shape[-2:]
        p = self.patch_size
        top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        pair = torch.stack(
            [source[:, top : top + p, left : left + p], target[:, top : top + p, left : left + p]]
        )
        if self.augment:
            flags = torch.from_numpy(rng.random(3) < 0.5)[None].expand(2, 3)
            pair = apply_flip_rotate(pair, flags)
        return pair[0].contiguous(), pair[1].contiguous()

    def on_device(self, device: str | torch.device) -> DevicePatches:
        """Every pair read once and held on ``device`` (input and target side by side in the
        channels), cut a batch at a time: ``TrainConfig(sampler="device")`` (chapter 5)."""
        stacked, split = [], ()
        for k in range(len(self.pairs)):
            source, target = self.pairs[k]
            self._check(k, source)
            stacked.append(torch.cat([source, target]))
            split = (source.shape[0], target.shape[0])
        return DevicePatches(stacked, self.patch_size, self.seed, self.augment, device=device,
                             split=split)  # fmt: skip


def course2023(root: str | Path, mode: str = "rgb") -> tuple[PairedFolder, ImageFolder]:
    """The 2023 course competition: (train pairs ``train/scan`` + ``train/clean``, test scans
    ``test/scan``). Test items are ``(scan, file_name)``; their clean pages are hidden."""
    root = Path(root)
    return PairedFolder(root / "train", mode=mode), ImageFolder(root / "test" / "scan", mode)


def _find_descan_root(folder: Path) -> Path | None:
    for candidate in [folder, *sorted(p.parent for p in folder.rglob("train") if p.is_dir())]:
        if (candidate / "train" / "scan").is_dir() and (candidate / "train" / "clean").is_dir():
            return candidate
    return None


def descan18k(root: str | Path, split: str = "train", mode: str = "rgb") -> PairedFolder:
    """One split (``train``, ``valid`` or ``test``) of DESCAN-18K: ``root/<split>/scan|clean``.

    ``root`` may also be a folder that holds this tree deeper (as a download unpacks it).
    """
    if split not in DESCAN_SPLITS:
        raise ValueError(f"split must be one of {DESCAN_SPLITS}, got {split!r}")
    root = Path(root)
    found = _find_descan_root(root) if root.is_dir() else None
    if found is None:
        raise FileNotFoundError(
            f"{root}: no DESCAN-18K tree (train/scan, train/clean, ...) found; "
            "fetch it with restorelab.data.download_descan18k(root)"
        )
    return PairedFolder(found / split, mode=mode)


def _unpack(folder: Path) -> None:
    for archive in sorted(folder.rglob("*")):
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                z.extractall(archive.parent)
        elif archive.name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive) as t:
                if hasattr(tarfile, "data_filter"):  # refuse links and paths leaving the folder
                    t.extractall(archive.parent, filter="data")
                else:  # pragma: no cover - Python without the tarfile filters
                    t.extractall(archive.parent)


def download_descan18k(
    dest: str | Path, repo_id: str = DESCAN_REPO, revision: str | None = None
) -> Path:
    """Download DESCAN-18K from the Hugging Face Hub into ``dest`` and return the dataset root.

    Needs ``huggingface_hub`` and internet access (the dataset is several GB). Archives in the
    download are unpacked. Offline, or when the Hub cannot be reached, raises ``RuntimeError``
    saying so; then copy the tree (see :func:`descan18k`) by hand.
    """
    dest = Path(dest)
    found = _find_descan_root(dest) if dest.is_dir() else None
    if found is not None:
        return found
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise RuntimeError(
            "downloading DESCAN-18K needs huggingface_hub: pip install huggingface_hub"
        ) from error
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise RuntimeError(
            f"cannot download {repo_id}: HF_HUB_OFFLINE is set. Unset it on a machine with "
            f"internet access, or copy the DESCAN-18K tree into {dest} by hand"
        )
    try:
        snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=dest)
    except Exception as error:  # the Hub raises many kinds: connection, auth, not found
        raise RuntimeError(
            f"could not download the Hugging Face dataset {repo_id} into {dest}: "
            f"{type(error).__name__}: {error}. Are you offline? On a machine with internet "
            f"access run restorelab.data.download_descan18k({str(dest)!r}), or copy the tree "
            "(train|valid|test/scan|clean) there by hand"
        ) from error
    _unpack(dest)
    found = _find_descan_root(dest)
    if found is None:
        raise RuntimeError(f"{dest}: the download holds no train/scan + train/clean folders")
    return found


class DegradedFolder(Dataset):
    """HR images of a folder (DIV2K style), cut into random patches and degraded on the fly.

    Item i: ``(degraded, clean)``. The patch (``patch_size``, flipped / turned when
    ``augment``) comes from ``numpy.random.default_rng([seed, i])``; ``degrade(batch,
    generator)`` receives it as a batch of one (1, C, P, P) with ``make_generator(seed, i)``
    and returns the degraded batch (any size: an SR degradation may shrink it). Images are read
    when first needed and kept in memory as uint8 when ``cache`` is True.
    """

    def __init__(
        self,
        root: str | Path,
        patch_size: int,
        degrade: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
        length: int = 1000,
        seed: int = 0,
        augment: bool = True,
        cache: bool = True,
        mode: str = "rgb",
    ) -> None:
        self.files = list_images(root)
        self.patch_size, self.degrade, self.length = patch_size, degrade, length
        self.seed, self.augment, self.cache, self.mode = seed, augment, cache, mode
        self._images: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.length

    def image(self, k: int) -> torch.Tensor:
        """Image k as uint8 (C, H, W)."""
        if k in self._images:
            return self._images[k]
        image = to_levels(read_image(self.files[k], self.mode))
        if self.cache:
            self._images[k] = image
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.integers(len(self.files)))
        image, p = self.image(k), self.patch_size
        h, w = image.shape[-2:]
        if min(h, w) < p:
            raise ValueError(f"{self.files[k]} ({h}x{w}) is smaller than the {p}px patch")
        top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        clean = image[None, :, top : top + p, left : left + p].float() / 255
        if self.augment:
            clean = apply_flip_rotate(clean, torch.from_numpy(rng.random(3) < 0.5)[None])
        degraded = self.degrade(clean, make_generator(self.seed, index))
        return degraded[0], clean[0]
