"""Every row of the bad-input table of book/appendix_course.md, run as written.

A row is ``| `what the user runs` | ... `what they see` |``. Command-line rows go through
``restorelab.cli.main`` in a folder holding the files the table names: an error row must end
with exit status 2 and exactly one line on stderr, with no traceback, and the table shows that
line whole; a row that succeeds (exit status 0) shows the text on stdout. Python rows are
evaluated and must raise the exception named, the table showing ``Type: message`` whole;
``python -m MODULE`` rows run the module as a script and show the text on stdout. In a message
shown whole, ``…`` stands for a part that depends on the machine or on torch's wording (paths,
torch's own error text, hashes), so a reader never sees a message cut off mid-sentence.
"""

from __future__ import annotations

import importlib.util
import json
import re
import runpy
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from restorelab import models, pretrained
from restorelab.cli import main
from restorelab.competition.make import make
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
from restorelab.io import list_images, read_image
from restorelab.metrics import ssim
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig, Trainer, TrainingDiverged

APPENDIX = Path(__file__).resolve().parents[1] / "book" / "appendix_course.md"
SECTION = APPENDIX.read_text().split("## Bad input and what you see")[1].split("\n## ")[0]
ROWS = [
    (match["run"], re.findall(r"`([^`]+)`", match["see"])[-1])
    for match in re.finditer(r"^\| `(?P<run>[^`]+)` \| (?P<see>.+) \|$", SECTION, re.M)
]
PROGRESS = re.compile(r"train: +\d+%\|")  # the training progress bar (tqdm) above an error
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
    "TrainConfig": TrainConfig,
    "pretrained": pretrained,
}


def shown_whole(see: str, message: str) -> bool:
    """Whether the table's ``see`` is all of ``message``, each ``…`` standing for some text."""
    pattern = ".+?".join(re.escape(piece) for piece in see.split("\u2026"))
    return re.fullmatch(pattern, message, re.S) is not None


def _save(folder: Path, name: str, image: Image.Image, **options) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / name, **options)


def _orientation(tag: int) -> Image.Exif:
    """EXIF data holding only an orientation tag (6: turn 90 degrees clockwise to view)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = tag
    return exif


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
    for name, (h, w) in {"a": (32, 32), "b": (32, 32), "c": (20, 30)}.items():
        _save(root / "mixed" / "scan", f"{name}.png", Image.fromarray(pixels(h, w, 3)))
        _save(root / "mixed" / "clean", f"{name}.png", Image.fromarray(pixels(w, h, 3)))
    sideways = Image.fromarray(pixels(10, 64, 3))  # stored 64x10, shown 10x64 (orientation 6)
    _save(root / "turned", "sideways.jpg", sideways, exif=_orientation(6))
    _save(root / "mac", "a.png", Image.fromarray(pixels(40, 48, 3)))
    (root / "mac" / "._a.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (root / "junk.pt").write_bytes(b"not a checkpoint")
    weights = bytearray(pretrained.weights_path("srcnn-x2").read_bytes())
    weights[-100] ^= 1  # one flipped bit in one weight
    (root / "damaged").mkdir()
    (root / "damaged" / "srcnn-x2.safetensors").write_bytes(bytes(weights))
    _checkpoint(root / "ok.pt")
    _checkpoint(root / "mism.pt", preset="rgb", model_kwargs={})
    _checkpoint(root / "scale0.pt", task={"name": "sr", "scale": 0, "channels": "y"})
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
    if run.startswith("python -m "):  # a module run as a script: what it prints
        module = importlib.util.find_spec(run.split()[2]).origin
        runpy.run_path(module, run_name="__main__")
        assert see in capsys.readouterr().out
        return
    if not run.startswith("restorelab "):
        kind, message = see.split(": ", 1)
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is checked by name
            eval(run, dict(PYTHON))  # the row's code, exactly as the table shows it
        assert type(caught.value).__name__ == kind
        assert shown_whole(message, str(caught.value)), str(caught.value)
        return
    status = main(shlex.split(run)[1:])
    out, err = capsys.readouterr()
    if "error:" in see:
        assert status == 2
        assert "Traceback" not in err
        lines = [line for line in err.strip().splitlines() if not PROGRESS.match(line)]
        assert len(lines) == 1, err
        assert shown_whole(see, lines[0]), lines[0]
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


# Issue 19: the defects a new user meets, each beyond its table row above.


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_read_image_turns_by_the_exif_orientation(suffix, tmp_path):
    upright = np.zeros((20, 30, 3), np.uint8)
    upright[:4, :4] = 255  # a white corner, top left as a viewer shows the photo
    stored = np.ascontiguousarray(np.rot90(upright))  # the camera's pixels; 6 turns them back
    Image.fromarray(stored).save(tmp_path / f"photo{suffix}", exif=_orientation(6))
    image = read_image(tmp_path / f"photo{suffix}")
    assert image.shape == (3, 20, 30)
    assert image[:, :3, :3].min() > 0.9 and image[:, -3:, -3:].max() < 0.1


def test_a_pair_with_different_orientation_tags_is_aligned(tmp_path):
    clean = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    _save(tmp_path / "clean", "p.png", Image.fromarray(clean))
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(clean)))  # scanned sideways
    _save(tmp_path / "scan", "p.png", stored, exif=_orientation(6))
    scan, target = PairedFolder(tmp_path)[0]
    assert torch.equal(scan, target)


def test_dot_files_are_skipped_by_every_listing(tmp_path):
    _save(tmp_path, "a.png", Image.fromarray(np.zeros((48, 48, 3), np.uint8)))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / ".hidden.jpg").write_bytes(b"not an image")
    assert [p.name for p in list_images(tmp_path)] == ["a.png"]
    assert len(training_images(tmp_path, "any", "error", 48)) == 1
    assert len(load_folder(tmp_path)) == len(ImageFolder(tmp_path)) == 1


def test_training_stops_at_the_first_non_finite_loss(tmp_path):
    photos = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    calls = []

    def loss_fn(output, target):  # finite for two steps, then NaN
        calls.append(1)
        loss = torch.nn.functional.mse_loss(output, target)
        return loss * float("nan") if len(calls) == 3 else loss

    config = TrainConfig(steps=6, batch_size=2, checkpoint_every=1, val_every=0, progress=False)
    trainer = Trainer(models.build("srcnn", features=(4, 4)), RandomPatches(photos, 16), loss_fn,
                      config, SuperResolution().make_pair, None, tmp_path)  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"^step 3: loss nan: training diverged .* --lr"):
        trainer.fit()
    assert len(calls) == 3
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 2  # the last good step
    assert not (tmp_path / "best.pt").exists()


def _pages(sizes: list[tuple[int, int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(scan, clean) pairs of random pixels; a pair of two sizes where ``sizes`` says so."""
    rng = torch.Generator().manual_seed(0)
    return [(torch.rand(3, 16, 16, generator=rng), torch.rand(3, h, w, generator=rng))
            for h, w in sizes]  # fmt: skip


def test_competition_make_that_fails_on_the_last_pair_leaves_nothing(tmp_path):
    out = tmp_path / "comp"
    with pytest.raises(ValueError, match=r"page_0003: scan \(3, 16, 16\) and clean \(3, 16, 20\)"):
        make(_pages([(16, 16)] * 3 + [(16, 20)]), out, 1)
    assert list(out.iterdir()) == []  # no half-written public/private, no temporary folder
    manifest = make(_pages([(16, 16)] * 4), out, 1)  # the rerun is not refused
    assert sorted(p.name for p in out.iterdir()) == ["private", "public"]
    assert json.loads((out / "private" / "manifest.json").read_text()) == manifest
    assert (out / "private").stat().st_mode & 0o777 == 0o700
    assert len(list((out / "public").rglob("*.png"))) == 7  # 3 train pairs, 1 test scan


def test_competition_make_says_what_is_wrong_with_too_few_pairs(tmp_path):
    with pytest.raises(ValueError, match=r"^a competition needs at least 2 pairs .*; src has 1$"):
        make(_pages([(16, 16)]), tmp_path, 1, source="src")
    with pytest.raises(ValueError, match=r"^the source has 3 pairs: test_count must be from 1 to 2 .* got 3$"):
        make(_pages([(16, 16)] * 3), tmp_path, 3)


@pytest.mark.parametrize(("model", "status"), [(27.01, 1), (33.5, 0)])
def test_a_demo_that_does_not_beat_bicubic_says_why(model, status, monkeypatch, capsys):
    def run_demo(out_dir, scale, steps, seed):  # the training's outcome, without training
        return {"model_psnr_y": model, "bicubic_psnr_y": 32.11}

    monkeypatch.setattr("restorelab.demo.run_demo", run_demo)
    assert main(["demo", "--steps", "1"]) == status
    said = capsys.readouterr().err
    assert said == ("" if status == 0 else
                    "restorelab demo: SRCNN (27.01 dB) does not beat bicubic (32.11 dB, Y-PSNR on "
                    "the held-out photos) after 1 step(s): train longer (the default --steps 1000 "
                    "does, in about a minute on a CPU)\n")  # fmt: skip
