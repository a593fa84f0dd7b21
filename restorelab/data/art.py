"""Image sets for chapter 8 (the clustered inpainter): crops of the embedded photos, WikiArt.

Taught in chapter 8. The student project trained on WikiArt paintings centre-cropped to
512x512, stored as an Arrow dataset. :func:`stream_wikiart` streams such a subset from the
Hugging Face Hub (Colab); :func:`embedded_crops` makes an offline stand-in from the photos
shipped with scikit-image, whose *true* class (the photo a crop comes from) is known, which the
chapter's oracle strategy needs. Both yield ``(image (3, S, S) float in [0, 1], label)`` rows
for :func:`restorelab.data.arrow.write_arrow_images`; :class:`Labelled` pairs a dataset of images
with one class per item for training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from restorelab.data.device_patches import DevicePatches, exact_uint8
from restorelab.data.embedded import TRAIN_PHOTOS, load_photo
from restorelab.io import quantize, to_tensor

WIKIART = "huggan/wikiart"  # 81k paintings; columns image, artist, genre, style


def embedded_crops(
    count: int, size: int, seed: int = 0, names: Sequence[str] = TRAIN_PHOTOS
) -> Iterator[tuple[torch.Tensor, int]]:
    """``count`` random ``size`` x ``size`` crops of the embedded photos ``names``, each with the
    index of its photo in ``names`` as label; the photos take turns, so every class has
    ``count / len(names)`` crops (rounded). A photo whose shorter side is below ``size`` is
    enlarged first (:func:`shorter_side_to`; "text" is 172 px high, and chapter 8's full
    setting crops 512 px), then rounded to 8-bit levels as a decoded file would be, so every
    crop stays exact as bytes (:class:`~restorelab.data.DevicePatches` keeps them as uint8).
    The same ``seed`` gives the same crops."""
    photos = [to_tensor(load_photo(name)) for name in names]
    photos = [p.expand(3, -1, -1) if p.shape[0] == 1 else p for p in photos]
    photos = [quantize(shorter_side_to(p, size)) if min(p.shape[-2:]) < size else p for p in photos]
    rng = np.random.default_rng(seed)
    for i in range(count):
        label = i % len(photos)
        photo = photos[label]
        top = int(rng.integers(photo.shape[-2] - size + 1))
        left = int(rng.integers(photo.shape[-1] - size + 1))
        yield photo[:, top : top + size, left : left + size].clone(), label


def shorter_side_to(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) in [0, 1] -> the image resized (antialiased bicubic, aspect kept) so that its
    shorter side is ``size`` pixels."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    if scale == 1:
        return image
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    return F.interpolate(image[None], size=new, mode="bicubic", antialias=True,
                         align_corners=False)[0].clamp(0, 1)  # fmt: skip


def centre_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size): shorter side resized to ``size`` (antialiased bicubic),
    then the centre cut out (the project's 512x512 WikiArt crops)."""
    image = shorter_side_to(image, size)
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[:, top : top + size, left : left + size]


def stream_wikiart(
    count: int, size: int = 512, label: str = "style", seed: int = 0, buffer: int = 1000
) -> Iterator[tuple[torch.Tensor, int]]:
    """The first ``count`` paintings of a shuffled stream of WikiArt (Hugging Face dataset
    ``huggan/wikiart``), centre-cropped to ``size``, with their ``label`` column (``style``: 27
    art styles, ``genre``: 11, ``artist``). Needs the internet (Colab); nothing is downloaded
    beyond the rows read. Raises RuntimeError with what to do instead when the Hub cannot be
    reached."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            "streaming WikiArt needs datasets: pip install 'restorelab[data]'"
        ) from error

    try:
        stream = datasets.load_dataset(WIKIART, split="train", streaming=True)
        stream = stream.shuffle(seed=seed, buffer_size=buffer)
        rows = iter(stream)
        first = next(rows)
    except Exception as error:  # no network, the Hub down, a renamed dataset
        raise RuntimeError(
            f"could not stream {WIKIART} from the Hugging Face Hub ({type(error).__name__}: "
            f"{error}). It needs the internet (it works in Colab); offline, build the Arrow set "
            "from the embedded photos: restorelab.data.embedded_crops"
        ) from error
    if label not in first:
        raise KeyError(f"{WIKIART} has no column {label!r}; it has {sorted(first)}")
    row, taken = first, 0
    while taken < count:
        image = to_tensor(np.asarray(row["image"].convert("RGB")))
        if min(image.shape[-2:]) >= size // 2:  # skip thumbnails: they would be blown up
            yield centre_square(image, size), int(row[label])
            taken += 1
        row = next(rows, None)
        if row is None:
            return


class Labelled(Dataset):
    """Items ``(dataset[i], labels[i])``: an image dataset with one class per item (chapter 8:
    the cluster of each image, or its true class). ``labels``: N ints, N = ``len(dataset)``.
    ``seed``: which images the device sampler draws at each step (:meth:`on_device`)."""

    def __init__(
        self,
        dataset: Dataset,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        seed: int = 0,
    ) -> None:
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if self.labels.ndim != 1 or len(self.labels) != len(dataset):
            raise ValueError(
                f"one label per item: {len(dataset)} items, labels of shape {tuple(self.labels.shape)}"
            )
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset[index], self.labels[index]

    def on_device(self, device: str | torch.device) -> DevicePatches:
        """Every image decoded once and held on ``device`` with its label; each batch is
        ``(images (N, C, S, S) float in [0, 1], labels (N,) long)`` of whole images, drawn with
        replacement: ``TrainConfig(sampler="device")`` (chapter 8's full settings). The images
        must be squares of one size, as the loader's batches need one size too."""
        images = []
        for i in range(len(self)):  # kept as bytes when exact: 3,000 images of 512 px take 2.4 GB
            image = self.dataset[i]
            levels = exact_uint8(image)
            images.append(image if levels is None else levels)
        shapes = sorted({tuple(image.shape) for image in images})
        if len(shapes) > 1 or shapes[0][-1] != shapes[0][-2]:
            raise ValueError(
                f"the device sampler takes whole square images of one size; these have shapes "
                f"{shapes[:3]}{' ...' if len(shapes) > 3 else ''}: crop them, or use "
                'sampler="loader"'
            )
        return DevicePatches(images, shapes[0][-1], self.seed, augment=False, device=device,
                             labels=self.labels)  # fmt: skip
