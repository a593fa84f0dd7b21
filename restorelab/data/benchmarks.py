"""Standard test sets: where to find them, and how to download them (e.g. in Colab).

Taught in chapter 1 (Set5/Set14), chapter 2 (Classic5), chapter 3 (Set12, BSD68, CBSD68);
``Train400`` (DnCNN's 400 grey training images) is the full-setting training set of chapters 2-3.
``benchmark_dir(name)`` looks, in order, in ``$RESTORELAB_DATA/<name>``, in the course
repository's sibling folder ``../shared/datasets/<name>`` and in the download cache
``~/.cache/restorelab/datasets/<name>``; with ``download=True`` it fetches missing sets from the
public GitHub repositories that host them (file by file, so a dead link names the file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import torch

from restorelab.io import grey_to_rgb, list_images, read_image

_SWINIR = "https://github.com/JingyunLiang/SwinIR/raw/HEAD/testsets"
_TRAIN400 = (
    "https://github.com/cszn/DnCNN/raw/HEAD/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400"
)
_FFDNET = "https://github.com/cszn/FFDNet/raw/HEAD/testsets"
_DENOISING = "https://github.com/majedelhelou/denoising_datasets/raw/HEAD"
_CBSD68 = (
    "101085 101087 102061 103070 105025 106024 108005 108070 108082 109053 119082 12084 123074 "
    "126007 130026 134035 14037 143090 145086 147091 148026 148089 157055 159008 160068 16077 "
    "163085 167062 167083 170057 175032 175043 182053 189080 19021 196073 197017 208001 210088 "
    "21077 216081 219090 220075 223061 227092 229036 236037 24077 241004 241048 253027 253055 "
    "260058 271035 285079 291000 295087 296007 296059 299086 300091 302008 304034 304074 306005 "
    "3096 33039 351093"
).split()
_SET14 = (
    "baboon barbara bridge coastguard comic face flowers foreman lenna man monarch pepper ppt3 "
    "zebra"
).split()
_SET5 = ["baby", "bird", "butterfly", "head", "woman"]

# name -> {local file name: url}; "mode" is how its images are read.
BENCHMARKS: dict[str, dict] = {
    "Set5": {"mode": "rgb", "files": {f"{n}.png": f"{_SWINIR}/Set5/HR/{n}.png" for n in _SET5}},
    "Set14": {"mode": "any", "files": {f"{n}.png": f"{_DENOISING}/CSet14/{n}.png" for n in _SET14}},
    "Set12": {"mode": "grey", "files": {f"{i:02d}.png": f"{_SWINIR}/Set12/{i:02d}.png" for i in range(1, 13)}},
    "BSD68": {"mode": "grey", "files": {f"test{i:03d}.png": f"{_FFDNET}/BSD68/test{i:03d}.png" for i in range(1, 69)}},
    "CBSD68": {"mode": "rgb", "files": {f"{n}.png": f"{_FFDNET}/CBSD68/{n}.png" for n in _CBSD68}},
    "Classic5": {
        "mode": "grey",
        "files": {f"{n}.bmp": f"{_SWINIR}/classic5/{n}.bmp" for n in ("baboon", "barbara", "boats", "lena", "peppers")},
    },
    # a training set, not a benchmark: the 400 grey 180x180 BSD images DnCNN and AR-CNN train on
    "Train400": {"mode": "grey", "files": {f"test_{i:03d}.png": f"{_TRAIN400}/test_{i:03d}.png" for i in range(1, 401)}},
}  # fmt: skip
for _scale in (2, 3, 4):
    BENCHMARKS[f"Set5/LR_bicubic/X{_scale}"] = {
        "mode": "rgb",
        "files": {
            f"{n}x{_scale}.png": f"{_SWINIR}/Set5/LR_bicubic/X{_scale}/{n}x{_scale}.png"
            for n in _SET5
        },
    }

CACHE = Path.home() / ".cache" / "restorelab" / "datasets"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def _candidates(name: str) -> list[Path]:
    roots = [Path(os.environ["RESTORELAB_DATA"])] if os.environ.get("RESTORELAB_DATA") else []
    return [root / name for root in [*roots, SHARED, CACHE]]


def benchmark_dir(name: str, download: bool = False) -> Path:
    """The folder holding test set ``name``; raises FileNotFoundError saying where it looked.

    ``name`` is a set of :data:`BENCHMARKS` or the name of any folder of images placed in one of
    the places above (e.g. ``$RESTORELAB_DATA/Urban100``); only known sets can be downloaded.
    """
    for folder in _candidates(name):
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    if download and name in BENCHMARKS:
        return download_benchmark(name)
    looked = ", ".join(str(p) for p in _candidates(name))
    if name not in BENCHMARKS:
        raise FileNotFoundError(
            f"benchmark {name} not found: no folder {name} in {looked}, and not a set restorelab "
            f"can download ({', '.join(n for n in BENCHMARKS if '/' not in n)}); put its images "
            f"in $RESTORELAB_DATA/{name}"
        )
    raise FileNotFoundError(
        f"benchmark {name} not found (looked in {looked}); download it with --download "
        f"(restorelab eval) or restorelab.data.benchmark_dir({name!r}, download=True), or set "
        "RESTORELAB_DATA"
    )


def download_benchmark(name: str, root: Path = CACHE) -> Path:
    """Download test set ``name`` into ``root/name`` (atomic per file) and return the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, url in BENCHMARKS[name]["files"].items():
        target = folder / file_name
        if target.exists():
            continue
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
                    shutil.copyfileobj(response, tmp)
            os.replace(tmp.name, target)
        except OSError as error:
            raise OSError(f"could not download {name}/{file_name} from {url}: {error}") from error
    return folder


def benchmark_images(
    name: str, download: bool = False, alpha: str = "error"
) -> list[tuple[str, torch.Tensor]]:
    """The images of test set ``name`` as ``(file stem, tensor (C, H, W) in [0, 1])``.

    Known sets are read in their mode; any other folder as it is (grey or RGB per image).
    """
    folder = benchmark_dir(name, download)
    mode = BENCHMARKS.get(name, {}).get("mode", "any")
    return [(path.stem, read_image(path, mode, alpha)) for path in list_images(folder)]


def matlab_lr_images(
    benchmark: str, scale: int, download: bool = False
) -> list[torch.Tensor] | None:
    """The LR images MATLAB's ``imresize`` made of ``benchmark`` at ``scale``, or None.

    Only Set5 ships them (``Set5/LR_bicubic/X2..X4``); super-resolution is scored on them rather
    than on LR images made here, as the papers did.
    """
    if benchmark != "Set5":
        return None
    folder = benchmark_dir(f"Set5/LR_bicubic/X{scale}", download=download)
    return [read_image(path, "rgb") for path in list_images(folder)]


def training_images(
    source: str,
    mode: str = "rgb",
    alpha: str = "error",
    min_size: int = 0,
    purpose: str = "",
    exclude: Iterable[str] = (),
) -> list[torch.Tensor]:
    """The training images a chapter or ``restorelab train --data`` names, as tensors (C, H, W).

    ``source``: ``"embedded"`` (the photos of scikit-image's training split, chapter 1 on), a
    name of :data:`BENCHMARKS` such as ``"Train400"`` (found locally or downloaded), or a folder
    of images read in ``mode`` with ``alpha`` (kept as uint8 to save memory; see
    :func:`restorelab.io.read_image`). With ``mode="any"`` a folder mixing grey and RGB images
    comes back all RGB (grey repeated), so that patches stack into batches. ``min_size``:
    refuse, naming the file, an image with a shorter side (``purpose`` says why). ``exclude``:
    embedded photos to leave out (``"embedded"`` only; chapter 3 leaves out the photos of
    :data:`restorelab.data.embedded.LEAKS_INTO_BENCHMARKS`, as Set12 is its test set).
    """
    from restorelab.data.datasets import check_size, load_folder
    from restorelab.data.embedded import embedded_photos

    if source in ("embedded", "embedded:train"):
        photos = embedded_photos("train", exclude=exclude)
        named = [(f"embedded photo {i}", im) for i, im in enumerate(photos)]
    elif source in BENCHMARKS:
        named = [(f"{source}/{stem}", im) for stem, im in benchmark_images(source, download=True)]
    elif Path(source).is_dir():
        images = load_folder(source, mode, alpha=alpha, min_size=min_size, purpose=purpose)
        if len({image.shape[0] for image in images}) > 1:
            images = [grey_to_rgb(im) if im.shape[0] == 1 else im for im in images]
        return images
    else:
        raise FileNotFoundError(
            f"training data {source}: neither 'embedded', a set of {', '.join(BENCHMARKS)} "
            "nor a folder"
        )
    for name, image in named:
        check_size(image, name, min_size, purpose)
    return [image for _, image in named]
