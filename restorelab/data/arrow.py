"""Images stored in Arrow files: Hugging Face ``datasets`` folders and ``.arrow`` files.

Taught in chapter 9 (large paired sets ship as Hugging Face datasets). ``save_to_disk`` writes a
folder with ``state.json`` and Arrow shards; an Image column is a struct ``{bytes, path}`` holding
the encoded file (PNG, JPEG, TIFF ...). :class:`ArrowImages` memory-maps the shards with pyarrow
(no copy, no ``datasets`` import needed) and decodes one image when it is asked for, so a
100 GB set opens instantly and a DataLoader worker only touches the pages it reads. Items are
float32 (C, H, W) in [0, 1], or a tuple of them for several columns (e.g. scan and clean).
"""

from __future__ import annotations

import itertools
import json
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import TqdmWarning

from restorelab.io import ImageReadError, decode_image, read_image


def _read_json(path: Path) -> dict:
    """A JSON file of a saved dataset; a broken one raises ValueError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not readable JSON ({error})") from None


def _shards(path: Path, split: str | None) -> list[Path]:
    """The Arrow files of a ``.arrow`` file, a saved Dataset or a saved DatasetDict folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if (path / "dataset_dict.json").is_file():
        splits = _read_json(path / "dataset_dict.json")["splits"]
        if split is None:
            raise ValueError(f"{path}: a DatasetDict with splits {splits}; pass split=")
        if split not in splits:
            raise ValueError(f"{path}: no split {split!r}; it has {splits}")
        path = path / split
    if (path / "state.json").is_file():
        files = _read_json(path / "state.json").get("_data_files", [])
        if files:
            return [path / f["filename"] for f in files]
    shards = sorted(path.glob("*.arrow"))
    if not shards:
        raise FileNotFoundError(f"{path}: no .arrow files")
    return shards


def _read_table(path: Path):
    import pyarrow as pa

    source = pa.memory_map(str(path), "r")
    try:
        return pa.ipc.open_file(source).read_all()  # Arrow random-access file format
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_stream(source).read_all()  # streaming format: what datasets writes


def _is_image(field_type) -> bool:
    import pyarrow as pa

    if pa.types.is_binary(field_type) or pa.types.is_large_binary(field_type):
        return True
    return pa.types.is_struct(field_type) and field_type.get_field_index("bytes") >= 0


class ArrowImages(Dataset):
    """Images of one or more columns of Arrow data, decoded lazily.

    ``path``: a ``.arrow`` file, a folder written by ``Dataset.save_to_disk`` or, with ``split``,
    by ``DatasetDict.save_to_disk``. ``columns``: a column name, several (items are then
    tuples), or None for every image column (binary, or a struct with ``bytes``; a single one
    gives tensors, several give tuples).
    ``mode``: "rgb", "grey" or "any" as in :func:`restorelab.io.read_image`.
    """

    def __init__(
        self,
        path: str | Path,
        columns: str | Sequence[str] | None = None,
        mode: str = "rgb",
        split: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.shards = _shards(self.path, split)
        self.mode = mode
        self._tables = None
        tables = self._open()
        schema = tables[0].schema
        if columns is None:
            columns = [f.name for f in schema if _is_image(f.type)]
            if not columns:
                raise ValueError(f"{self.path}: no image column in {schema.names}")
            if len(columns) == 1:
                columns = columns[0]
        self.single = isinstance(columns, str)
        self.columns = [columns] if self.single else list(columns)
        for name in self.columns:
            if name not in schema.names:
                raise KeyError(f"{self.path}: no column {name!r}; columns are {schema.names}")
            if not _is_image(schema.field(name).type):
                raise TypeError(
                    f"{self.path}: column {name!r} ({schema.field(name).type}) holds no images"
                )
        self.offsets = np.cumsum([0] + [t.num_rows for t in tables])

    def _open(self):
        if self._tables is None:
            self._tables = [_read_table(p) for p in self.shards]
        return self._tables

    def __getstate__(self) -> dict:  # worker processes memory-map the files themselves
        state = self.__dict__.copy()
        state["_tables"] = None
        return state

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _image(self, table, row: int, column: str, index: int) -> torch.Tensor:
        value = table.column(column)[row].as_py()
        where = self.shards[0] if len(self.shards) == 1 else self.path
        source = f"{where} row {index} ({column})"
        if isinstance(value, dict):  # datasets' Image feature: {"bytes": ..., "path": ...}
            if value.get("bytes") is None:
                if not value.get("path"):
                    raise ImageReadError(f"{source}: neither bytes nor a path")
                return read_image(value["path"], self.mode)
            value = value["bytes"]
        if value is None:
            raise ImageReadError(f"{source}: empty")
        return decode_image(value, self.mode, source=source)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows")
        shard = int(np.searchsorted(self.offsets, index, side="right")) - 1
        table, row = self._open()[shard], index - int(self.offsets[shard])
        images = tuple(self._image(table, row, c, index) for c in self.columns)
        return images[0] if self.single else images


def column_values(path: str | Path, column: str, split: str | None = None) -> list:
    """Every value of a non-image ``column`` (labels, names ...) of the Arrow data at ``path``,
    in row order (the rows of :class:`ArrowImages` on the same path)."""
    path = Path(path)
    values: list = []
    for shard in _shards(path, split):
        table = _read_table(shard)
        if column not in table.schema.names:
            raise KeyError(f"{shard}: no column {column!r}; columns are {table.schema.names}")
        values.extend(table.column(column).to_pylist())
    return values


def write_arrow_images(
    rows: Iterable[tuple[torch.Tensor | np.ndarray, int]],
    path: str | Path,
    label_names: Sequence[str] | None = None,
) -> Path:
    """Write (image, label) rows as a Hugging Face dataset folder (``save_to_disk``) at ``path``.

    Images: float tensors (C, H, W) in [0, 1] or uint8 arrays (H, W[, C]); stored as PNG in an
    ``image`` column (``datasets.Image``), labels in a ``label`` column (``datasets.ClassLabel``
    when ``label_names`` are given). Written through a generator, so a streamed source never
    sits in memory at once. Read it back with ``ArrowImages(path)`` and
    ``column_values(path, "label")``.
    """
    try:
        with (
            warnings.catch_warnings()
        ):  # it imports tqdm.auto, which warns in a kernel without ipywidgets
            warnings.simplefilter("ignore", TqdmWarning)
            import datasets
    except ImportError as error:
        raise ImportError(
            "writing Arrow data needs datasets: pip install 'restorelab[data]'"
        ) from error
    from restorelab.io import to_uint8

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path}: no rows to write")

    def generate():
        for image, label in itertools.chain([first], rows):
            array = to_uint8(image) if isinstance(image, torch.Tensor) else image
            yield {"image": Image.fromarray(np.ascontiguousarray(array)), "label": int(label)}

    label = datasets.ClassLabel(names=list(label_names)) if label_names else datasets.Value("int64")
    features = datasets.Features({"image": datasets.Image(), "label": label})
    path = Path(path)
    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a bar per phase, redrawn per row: noise in a notebook
    try:
        with tempfile.TemporaryDirectory(prefix="restorelab-arrow-") as cache:
            # a fresh fingerprint: the rows come from an iterator, which datasets cannot hash
            data = datasets.Dataset.from_generator(generate, features=features, cache_dir=cache,
                                                   fingerprint=uuid.uuid4().hex)  # fmt: skip
            data.save_to_disk(str(path))
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    return path
