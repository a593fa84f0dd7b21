"""Every row of the bad-input table of book/appendix_course.md, run as written.

A row is ``| `what the user runs` | ... `what they see` |``. Command-line rows go through
``restorelab.cli.main`` in a folder holding the files the table names: an error row must end
with exit status 2 and exactly one line on stderr containing the text, with no traceback; a row
that succeeds (exit status 0) shows the text on stdout. Python rows are evaluated and must raise
the exception named, with the text in its message.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorelab import models
from restorelab.cli import main
from restorelab.data import (
    ImageFolder,
    PairedFolder,
    PairedPatches,
    RandomPatches,
    benchmark_dir,
    load_folder,
    training_images,
)
from restorelab.experiment import load_checkpoint, make_task, make_trainer
from restorelab.infer import predict
from restorelab.io import read_image
from restorelab.metrics import ssim
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig

APPENDIX = Path(__file__).resolve().parents[1] / "book" / "appendix_course.md"
SECTION = APPENDIX.read_text().split("## Bad input and what you see")[1].split("\n## ")[0]
ROWS = [
    (match["run"], re.findall(r"`([^`]+)`", match["see"])[-1])
    for match in re.finditer(r"^\| `(?P<run>[^`]+)` \| (?P<see>.+) \|$", SECTION, re.M)
]
PYTHON = {
    "read_image": read_image,
    "load_folder": load_folder,
    "training_images": training_images,
    "ImageFolder": ImageFolder,
    "PairedFolder": PairedFolder,
    "PairedPatches": PairedPatches,
    "RandomPatches": RandomPatches,
    "benchmark_dir": benchmark_dir,
    "make_task": make_task,
    "predict": predict,
    "models": models,
    "torch": torch,
    "ssim": ssim,
    "load_checkpoint": load_checkpoint,
}


def _save(folder: Path, name: str, image: Image.Image) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / name)


def _checkpoint(path: Path, **extra) -> None:
    """An untrained SRCNN x2 checkpoint as the Trainer writes it; ``extra`` edits what it names."""
    photo = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    trainer = make_trainer("srcnn", SuperResolution(), [photo], [photo], TrainConfig(), None)
    state = trainer.state_dict()
    state["config"]["extra"].update(extra)
    torch.save(state, path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The files the table names."""
    root = tmp_path_factory.mktemp("bad_input")
    rng = np.random.default_rng(0)

    def pixels(*shape: int) -> np.ndarray:
        return rng.integers(0, 256, shape, dtype=np.uint8)

    for i in range(2):
        _save(root / "grey", f"g{i}.png", Image.fromarray(pixels(64, 64)))
    _save(root / "rgba", "a.png", Image.fromarray(pixels(64, 64, 4)))
    _save(root / "small", "big.png", Image.fromarray(pixels(64, 64, 3)))
    _save(root / "small", "little.png", Image.fromarray(pixels(20, 30, 3)))
    _save(root / "tiny", "dot.png", Image.fromarray(pixels(1, 1, 3)))
    (root / "empty").mkdir()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "bad.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    ramp = np.linspace(0, 1, 40 * 48).reshape(40, 48)
    _save(root / "hdr", "hdr.tif", Image.fromarray((ramp * 70000 - 5).astype(np.float32), "F"))
    _save(root / "formats", "a.png", Image.fromarray(pixels(40, 48, 3)))
    _save(root / "formats", "b.jpg", Image.fromarray(pixels(40, 48, 3)))
    _save(root / "formats", "c.bmp", Image.fromarray(pixels(40, 48)))
    _save(root / "formats", "d.tif", Image.fromarray(np.round(ramp * 65535).astype(np.uint16)))
    _save(root / "formats", "e.tif", Image.fromarray(ramp.astype(np.float32), "F"))
    _save(root / "large", "big.png", Image.fromarray(pixels(384, 512, 3)))
    for side in ("scan", "clean"):
        _save(root / "pairs" / side, "p.png", Image.fromarray(pixels(20, 30, 3)))
        _save(root / "unpaired" / side, "p.png", Image.fromarray(pixels(8, 8, 3)))
    _save(root / "unpaired" / "scan", "x.png", Image.fromarray(pixels(8, 8, 3)))
    (root / "junk.pt").write_bytes(b"not a checkpoint")
    _checkpoint(root / "ok.pt")
    _checkpoint(root / "mism.pt", preset="rgb", model_kwargs={})
    return root


def test_the_table_has_every_kind_of_row():
    runs = [run for run, _ in ROWS]
    assert len(runs) == len(set(runs)) >= 45
    for entry in ("restorelab train", "restorelab eval", "read_image(", "load_checkpoint("):
        assert any(run.startswith(entry) for run in runs), entry


@pytest.mark.parametrize(("run", "see"), ROWS, ids=[run for run, _ in ROWS])
def test_row(run, see, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("RESTORELAB_DATA", str(workspace))
    if not run.startswith("restorelab "):
        kind, message = see.split(": ", 1)
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is checked by name
            eval(run, dict(PYTHON))  # the row's code, exactly as the table shows it
        assert type(caught.value).__name__ == kind
        assert message in str(caught.value)
        return
    status = main(shlex.split(run)[1:])
    out, err = capsys.readouterr()
    if "error:" in see:
        assert status == 2
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert see in err
    else:
        assert status == 0, err
        assert see in out


def test_debug_shows_the_traceback(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        main(["--debug", "eval", "missing.pt"])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        main(["eval", "junk.pt", "--debug"])


def test_an_unexpected_error_is_one_line_too(workspace, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.chdir(workspace)
    monkeypatch.setattr("restorelab.experiment.load_checkpoint", broken)
    assert main(["eval", "ok.pt"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "restorelab eval: error: ZeroDivisionError: division by zero "
        "(rerun with --debug for the traceback)"
    )
