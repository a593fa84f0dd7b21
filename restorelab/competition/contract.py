"""The submission contract: what a team's notebook must leave in its work folder.

Taught in the course appendix ("Running the competition") and chapter 9.

The grader runs the notebook with two papermill parameters, ``DATA_DIR`` (the public folder,
read-only) and ``OUTPUT_DIR`` (the work folder, also the current directory). It must write:

* ``outputs/NAME.png``: one restored image per test scan ``DATA_DIR/test/scan/NAME.png``, same
  size (scored by :mod:`restorelab.competition.score`);
* ``model.json``: ``{"architecture": NAME, "preset": PRESET, "kwargs": {...}, "inference":
  {"tile": T, "overlap": O, "self_ensemble": E}}`` naming a :mod:`restorelab.models`
  architecture (``preset`` defaults to "paper", ``kwargs`` to {}) and how the outputs were
  restored with :func:`restorelab.infer.predict` (defaults: whole pages, no self-ensemble), so
  that the grader's re-run of the model (:mod:`restorelab.competition.verify`) is the same;
* ``model.safetensors`` (preferred) or ``model.pt``: the model's state dict; ``model.pt`` may also
  be a restorelab Trainer checkpoint (the state dict under "model").

:func:`load_model` builds the architecture on the meta device (no memory), counts its trainable
parameters against the limit, then loads the weights with safetensors or
``torch.load(weights_only=True)`` (never unpickling arbitrary objects) into it, strictly; every
file is read by :func:`restorelab.competition.untrusted.read_file`. The grader runs it in the
sandbox (:mod:`restorelab.competition.verify`), never in its own process.
:func:`write_submission` is the students' side (chapter 9): it writes all three for a model.
"""

from __future__ import annotations

import io
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from restorelab import models
from restorelab.competition.make import PARAMETER_LIMIT
from restorelab.competition.untrusted import UntrustedFileError, read_file
from restorelab.infer import check_tile, predict
from restorelab.io import list_images, read_image, write_image

MAX_CARD_BYTES = 64 << 10
MAX_WEIGHTS_BYTES = 512 << 20
WEIGHT_FILES = ("model.safetensors", "model.pt")
# Y-MAE (8-bit levels) between a submitted restoration and the grader's float32 re-run of the
# model (made the way "inference" declares) above which the outputs are not the model's.
# benchmarks/results/output_tolerance.md (12 models, 48 pages): another thread count or fp16
# autocast (a stand-in for a GPU's TF32 convolutions) moves a page by at most 0.06; brightening
# every pixel by one level moves one by at least 0.47. bf16 autocast moves one by up to 0.83, as
# far as an edit, hence the float32 rule.
OUTPUT_TOLERANCE = 0.3
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, safe to print, tabulate and show: terminal colour codes, every
    other control character (escape sequences lose their escape) and invisible format
    characters (bidi overrides, zero-width) removed; a file name's undecodable bytes shown as
    ``\\udcff``; at most ``limit`` characters."""
    text = ANSI.sub("", text).encode("utf-8", "backslashreplace").decode("utf-8")
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(kept.split())[:limit]


class ContractError(ValueError):
    """The work folder breaks the submission contract; the message names the file."""


def _read(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of ``folder/name``, read by :func:`restorelab.competition.untrusted.read_file`."""
    try:
        return read_file(folder / name, limit)
    except UntrustedFileError as error:
        message = str(error)
        if message.endswith(": missing"):
            message += " (the notebook must write it)"
        raise ContractError(message) from None


@dataclass(frozen=True)
class Inference:
    """How a submission's outputs were restored: the :func:`restorelab.infer.predict`
    arguments ``model.json`` declares under ``"inference"`` (all optional)."""

    tile: int = 0
    overlap: int = 16
    self_ensemble: bool = False

    @classmethod
    def parse(cls, value: object) -> Inference:
        """The declared ``value`` (a JSON object), checked; raises :class:`ContractError`."""
        if not isinstance(value, dict) or set(value) - {"tile", "overlap", "self_ensemble"}:
            raise ContractError(
                'model.json: "inference" must be {"tile": int, "overlap": int, "self_ensemble": '
                "true|false}"
            )
        declared = cls(**value)
        if not all(type(n) is int for n in (declared.tile, declared.overlap)) or not isinstance(
            declared.self_ensemble, bool
        ):
            raise ContractError(
                'model.json: "inference": tile and overlap must be integers, self_ensemble '
                "true or false"
            )
        try:
            check_tile(declared.tile, declared.overlap)
        except ValueError as error:
            raise ContractError(f'model.json: "inference": {error}') from None
        return declared


@dataclass(frozen=True)
class ModelCard:
    """A checked ``model.json``: what to build, and how the outputs were restored with it."""

    architecture: str
    preset: str
    kwargs: dict
    inference: Inference = field(default_factory=Inference)


def read_card(folder: Path) -> ModelCard:
    """``model.json`` of ``folder``, checked."""
    try:
        card = json.loads(_read(folder, "model.json", MAX_CARD_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"model.json: not JSON ({error})") from None
    if not isinstance(card, dict) or not isinstance(card.get("architecture"), str):
        raise ContractError(
            'model.json: expected {"architecture": NAME, "preset": ..., "kwargs": {...}}'
        )
    name, preset, kwargs = card["architecture"], card.get("preset", "paper"), card.get("kwargs", {})
    if name not in models.available():
        raise ContractError(
            f"model.json: unknown architecture {name!r}; known: {models.available()}"
        )
    if not isinstance(preset, str) or not isinstance(kwargs, dict):
        raise ContractError("model.json: preset must be a string and kwargs an object")
    return ModelCard(name, preset, kwargs, Inference.parse(card.get("inference", {})))


def _build(name: str, preset: str, kwargs: dict, device: str) -> torch.nn.Module:
    try:
        with torch.device(device):
            return models.build(name, preset, **kwargs)
    except Exception as error:  # any bad kwargs of any architecture
        raise ContractError(
            f"model.json: cannot build {name} (preset {preset}, kwargs {kwargs}): "
            f"{type(error).__name__}: {error}"
        ) from None


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    present = [name for name in WEIGHT_FILES if os.path.lexists(folder / name)]
    if not present:
        raise ContractError(f"model weights: missing (write {' or '.join(WEIGHT_FILES)})")
    name = present[0]
    data = _read(folder, name, MAX_WEIGHTS_BYTES)
    if name.endswith(".safetensors"):
        from safetensors.torch import load

        try:
            return load(data)
        except Exception as error:  # safetensors raises its own types
            raise ContractError(f"{name}: not a readable safetensors file ({error})") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for anything but tensors and plain containers
        message = one_line(str(error).split("WeightsUnpickler error:")[-1])  # torch's own words
        raise ContractError(
            f"{name}: refused by torch.load(weights_only=True): {type(error).__name__}: {message}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ContractError(f"{name}: not a state dict of tensors")
    return state


def load_model(
    folder: str | Path, limit: int = PARAMETER_LIMIT
) -> tuple[nn.Module, int, ModelCard]:
    """The model of ``folder`` with its weights loaded, its parameter count and its card; raises
    :class:`ContractError` when the card or weights are missing or bad, the count is over
    ``limit``, or the weights do not fit. The grader calls it only in the sandbox
    (:mod:`restorelab.competition.verify`): the card's kwargs are a team's."""
    folder = Path(folder)
    card = read_card(folder)
    name, preset, kwargs = card.architecture, card.preset, card.kwargs
    count = models.count_params(_build(name, preset, kwargs, "meta"))
    if count > limit:
        raise ContractError(f"model: {name} has {count:,} parameters, over the {limit:,} limit")
    state = _weights(folder)
    model = _build(name, preset, kwargs, "cpu")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        message = one_line(str(error))
        raise ContractError(f"model weights do not fit {name}: {message}") from None
    return model.eval(), count, card


def check_model(folder: str | Path, limit: int = PARAMETER_LIMIT) -> int:
    """The parameter count of the model in ``folder``, checked by :func:`load_model`."""
    return load_model(folder, limit)[1]


def write_submission(
    model: nn.Module,
    card: Mapping,
    data_dir: str | Path,
    output_dir: str | Path,
    tile: int = 0,
    overlap: int = 16,
    self_ensemble: bool = False,
) -> list[Path]:
    """Write a submission by the contract into ``output_dir``; returns the restored images' paths.

    ``model`` restores each ``data_dir/test/scan/NAME.*`` (read as RGB in [0, 1]) with
    :func:`restorelab.infer.predict` (``tile``/``overlap``: tiled inference, 0 for whole pages;
    ``self_ensemble``: the mean over the input's 8 flips and turns) into ``outputs/NAME.png``
    (8-bit, same size); ``card`` ({"architecture", "preset", "kwargs"}: how to build ``model``
    with :func:`restorelab.models.build`) goes to ``model.json`` with these three under
    ``"inference"``, and the state dict to ``model.safetensors`` (both written atomically).
    Check the folder with :func:`check_model` before handing it in (chapter 9).
    """
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    scans = list_images(Path(data_dir) / "test" / "scan")
    if not scans:
        raise FileNotFoundError(f"{Path(data_dir) / 'test' / 'scan'}: no test scans to restore")
    written = []
    for path in scans:
        restored = predict(model, read_image(path), tile=tile, overlap=overlap,
                           self_ensemble=self_ensemble)  # fmt: skip
        written.append(write_image(output_dir / "outputs" / f"{path.stem}.png", restored))
    inference = asdict(Inference(tile, overlap, self_ensemble))
    card_tmp = output_dir / "model.json.tmp"
    card_tmp.write_text(json.dumps({**card, "inference": inference}, indent=2) + "\n")
    os.replace(card_tmp, output_dir / "model.json")
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    weights_tmp = output_dir / "model.safetensors.tmp"
    save_file(state, str(weights_tmp))
    os.replace(weights_tmp, output_dir / "model.safetensors")
    return written
