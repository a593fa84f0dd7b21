"""Checkpoints and run folders: atomic saves, safe loads, and the rules that keep a run.

Taught in chapter 1. A run folder holds ``last.pt`` (where to continue), ``best.pt`` (the best
validation so far), ``log.csv`` and ``tensorboard/``. :func:`open_run` decides what a new
``fit`` may do with such a folder: start, continue, or stop with a message that says why, so
that nothing a user trained is overwritten by accident.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from restorelab.train.config import RESUMABLE_CHANGES, TrainConfig

# compile_cache.bin: what torch.compile built for the run (restorelab.train.compile_cache)
RUN_FILES = ("last.pt", "best.pt", "log.csv", "tensorboard", "compile_cache.bin")


def note(message: str) -> None:
    """Tell the user something about their run (stderr, shown in notebooks too)."""
    print(message, file=sys.stderr, flush=True)


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a torn file."""
    write_atomic(path, lambda handle: torch.save(obj, handle))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(handle)`` into a temporary file beside ``path`` (``.NAME.*.tmp``), synced, then
    renamed to ``path``: a reader sees the old file or the whole new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _numpy_globals() -> list:
    """What unpickling a NumPy array needs: checkpoints written before 0.2 hold one (RNG state)."""
    array, scalar = np.zeros(1, np.uint32), np.float64(0)
    return [
        array.__reduce__()[0], scalar.__reduce__()[0], np.ndarray, np.dtype,
        type(array.dtype), type(scalar.dtype),
    ]  # fmt: skip


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The dict saved by a Trainer (or any weights file), loaded with ``weights_only=True``.

    Only tensors, numbers, strings and containers of them are unpickled (plus NumPy arrays, for
    checkpoints of older versions): a checkpoint from the internet cannot run code. Errors name
    the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        reason = str(error).splitlines()[-1] if str(error) else type(error).__name__
        if "Unsupported global" in str(error):
            reason = reason.split("Check the documentation")[0].strip()
            raise ValueError(
                f"{path}: holds Python objects other than weights ({reason}); restorelab loads "
                "checkpoints with weights_only=True, so only a trusted file should be loaded "
                "with torch.load(path, weights_only=False)"
            ) from error
        raise ValueError(f"{path}: not a readable checkpoint ({reason})") from error


def load_weights(model: nn.Module, path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Load the model weights of a Trainer checkpoint (or a bare state dict) into ``model``."""
    state = read_checkpoint(path, map_location)
    model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
    return model


def rng_state() -> dict:
    """Python, NumPy and torch RNG states, as tensors and plain numbers (``weights_only``-safe)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (or an older checkpoint's NumPy-array form)."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((kind, keys.astype(np.uint32), position, has_gauss, gauss))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def run_settings(config: dict) -> dict[str, object]:
    """The settings of a saved config that a resume must keep, by the names users pass them.

    ``extra`` (written by :func:`restorelab.experiment.make_trainer`) is flattened: its task's
    settings (``scale``, ``quality`` ...) and model arguments appear under their own names.
    """
    settings = {k: _plain(v) for k, v in config.items() if k not in RESUMABLE_CHANGES | {"extra"}}
    for key, value in config.get("extra", {}).items():
        if key == "task" and isinstance(value, dict):
            settings["task"] = value.get("name")
            settings.update({k: _plain(v) for k, v in value.items() if k != "name"})
        elif key == "model_kwargs" and isinstance(value, dict):
            settings.update({k: _plain(v) for k, v in value.items()})
        else:
            settings[key] = _plain(value)
    return settings


def check_resumable(state: dict, config: TrainConfig, path: Path) -> None:
    """Raise ValueError naming every setting of ``config`` that contradicts checkpoint ``path``."""
    # fields added to TrainConfig after the checkpoint was written count with their defaults
    saved = run_settings({**asdict(TrainConfig()), **state["config"]})
    now = run_settings(asdict(config))
    differ = [
        f"{key} {saved.get(key, 'unset')} (now {now.get(key, 'unset')})"
        for key in sorted(set(saved) | set(now))
        if saved.get(key) != now.get(key)
    ]
    if differ:
        raise ValueError(
            f"{path} was trained with other settings: {'; '.join(differ)}. Resume with the "
            "checkpoint's settings, or start a new run in another folder"
        )
    if config.steps < state["step"]:
        raise ValueError(
            f"{path} has already trained {state['step']} steps: --steps {config.steps} is fewer; "
            f"pass at least {state['step']}"
        )


def _describe(out_dir: Path) -> str:
    parts = []
    for name in ("last.pt", "best.pt"):
        if (out_dir / name).exists():
            try:
                state = read_checkpoint(out_dir / name)
                score = f", {state['config']['monitor']} {state['best']:.2f}"
                parts.append(f"{name} at step {state['step']}{score if name == 'best.pt' else ''}")
            except (ValueError, KeyError, TypeError):
                parts.append(f"{name} (unreadable)")
    parts += [name for name in ("log.csv", "tensorboard") if (out_dir / name).exists()]
    return ", ".join(parts)


def clear_run(out_dir: Path) -> None:
    """Delete the files a run writes in ``out_dir`` (and nothing else)."""
    for name in RUN_FILES:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def open_run(
    out_dir: Path, config: TrainConfig, resume: bool, overwrite: bool, require_run: bool
) -> tuple[dict | None, bool]:
    """What a ``fit`` into ``out_dir`` starts from: ``(checkpoint state or None, rewrite_logs)``.

    * ``out_dir`` an existing file: NotADirectoryError, before any step;
    * temporary files of saves that were killed are removed;
    * ``overwrite``: the run there is deleted, training starts at step 0;
    * neither flag: a folder holding a run is refused (FileExistsError offering both flags);
    * ``resume``: continue from ``last.pt``; when only ``best.pt`` is left, from it (so a better
      ``best.pt`` is never replaced by a fresh start); with logs or temporary files but no
      checkpoint (killed before or during the first save), from step 0; with no run at all, from step 0, or, with
      ``require_run``, FileNotFoundError. A checkpoint whose settings contradict ``config``
      raises ValueError naming each difference.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: pass one of them")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(
            f"{out_dir}: a file, not a folder; checkpoints and logs need a folder (another --out)"
        )
    # what write_atomic leaves behind when killed mid-write
    stale = sorted(p for name in RUN_FILES for p in out_dir.glob(f".{name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        note(f"{out_dir}: removed {len(stale)} temporary file(s) left by an interrupted save")
    holds_run = any((out_dir / name).exists() for name in RUN_FILES)
    if overwrite:
        if holds_run:
            note(f"{out_dir}: --overwrite: deleting the run there ({_describe(out_dir)})")
            clear_run(out_dir)
        return None, False
    if not resume:
        if holds_run:
            raise FileExistsError(
                f"{out_dir} already holds a run ({_describe(out_dir)}): add --resume to continue "
                "it, or --overwrite to delete it and start again (Python: fit(resume=True) or "
                "fit(overwrite=True))"
            )
        return None, False
    found = next((out_dir / n for n in ("last.pt", "best.pt") if (out_dir / n).exists()), None)
    if found is None:
        if holds_run or stale:
            note(f"{out_dir}: no checkpoint yet (the run stopped before its first): from step 0")
            return None, True
        if require_run:
            raise FileNotFoundError(
                f"{out_dir}: no run to resume (no last.pt there); leave out --resume to start one"
            )
        return None, False
    if found.name == "best.pt":
        note(f"{out_dir}/last.pt is missing: resuming from best.pt")
    state = read_checkpoint(found)
    check_resumable(state, config, found)
    return state, True
