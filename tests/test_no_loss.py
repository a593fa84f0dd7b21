"""Nothing a user trained is lost: refused overwrites, safe resumes, clean logs, safe loads."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from train_runs import image_folders, tensorboard_steps, train_args

from restorelab import models
from restorelab.cli import main
from restorelab.data import RandomPatches
from restorelab.experiment import make_task, make_trainer
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig, Trainer, read_checkpoint

TASK = SuperResolution(scale=2)
IMAGES = [torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(3)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return image_folders(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished run of the command line (24 steps, validated at 8, 16, 24)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_args(data, out)) == 0
    return out


@pytest.fixture
def run_dir(finished, tmp_path):
    """A copy of the finished run that a test may change."""
    return shutil.copytree(finished, tmp_path / "run")


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_second_run_into_a_run_folder_is_refused(data, run_dir, capsys):
    before = _files(run_dir)
    assert main(train_args(data, run_dir)) == 2
    error = capsys.readouterr().err
    assert "already holds a run (last.pt at step 24, best.pt at step" in error
    assert "add --resume to continue it, or --overwrite to delete it" in error
    assert _files(run_dir) == before


def test_overwrite_starts_again(data, run_dir, tmp_path, capsys):
    (run_dir / "notes.txt").write_text("mine")
    assert main(train_args(data, run_dir, "--overwrite", "--steps", "8")) == 0
    assert "--overwrite: deleting the run there" in capsys.readouterr().err
    assert main(train_args(data, tmp_path / "fresh", "--steps", "8")) == 0
    assert (run_dir / "log.csv").read_bytes() == (tmp_path / "fresh" / "log.csv").read_bytes()
    assert (run_dir / "notes.txt").read_text() == "mine"  # only the run's own files go
    assert main(train_args(data, run_dir, "--overwrite", "--resume")) == 2
    assert "contradict each other" in capsys.readouterr().err


def test_resume_without_last_pt_continues_from_best_and_keeps_it(data, run_dir, capsys):
    best = read_checkpoint(run_dir / "best.pt")
    (run_dir / "last.pt").unlink()
    assert main(train_args(data, run_dir, "--resume")) == 0
    out, err = capsys.readouterr()
    assert "last.pt is missing: resuming from best.pt" in err
    assert json.loads(out.splitlines()[-1])["step"] == 24
    assert read_checkpoint(run_dir / "best.pt")["best"] >= best["best"]


def test_resume_on_a_folder_without_a_run_is_an_error(data, tmp_path, capsys):
    assert main(train_args(data, tmp_path / "nothing", "--resume")) == 2
    assert "no run to resume (no last.pt there); leave out --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--scale", "3"], "scale 2 (now 3)"),
        (["--model", "dncnn"], "model srcnn (now dncnn)"),
        (["--task", "jpeg"], "task sr (now jpeg)"),
        (["--preset", "rgb"], "preset paper (now rgb)"),
        (["--patch-size", "24"], "patch_size 16 (now 24)"),
        (["--loss", "l1"], "loss l2 (now l1)"),
        (["--lr", "0.01"], "lr 0.001 (now 0.01)"),
        (["--channels", "rgb"], "channels y (now rgb)"),
        (["--steps", "20"], "already trained 24 steps: --steps 20 is fewer"),
    ],
)
def test_resume_with_contradicting_settings_names_them(data, run_dir, flags, named, capsys):
    before = _files(run_dir)
    assert main(train_args(data, run_dir, "--resume", *flags)) == 2
    assert named in capsys.readouterr().err
    assert _files(run_dir) == before


def test_a_longer_run_on_resume_logs_its_schedule(data, run_dir, capsys):
    assert main(train_args(data, run_dir, "--resume", "--steps", "30")) == 0
    err = capsys.readouterr().err
    assert "resuming at step 24 with --steps 30 (the checkpoint had 24): the cosine LR" in err
    with open(run_dir / "log.csv") as handle:
        rows = {
            r["name"]: float(r["value"]) for r in csv.DictReader(handle) if r["kind"] == "resume"
        }
    assert rows["steps_before"] == 24 and rows["steps"] == 30 and rows["lr"] > rows["lr_before"]
    assert read_checkpoint(run_dir / "last.pt")["step"] == 30


def test_bad_validation_data_stops_the_run_before_step_1(tmp_path):
    val = [torch.rand(3, 32, 32), torch.rand(3, 1, 1)]  # the 1x1 image cannot be scored
    config = TrainConfig(steps=4, batch_size=2, progress=False, val_every=2)
    trainer = make_trainer("srcnn", make_task("sr"), IMAGES, val, config, tmp_path, patch_size=16)
    with pytest.raises(RuntimeError):
        trainer.fit()
    assert trainer.step == 0 and not (tmp_path / "log.csv").exists()


def _trainer(out_dir, steps=12, validate=None, **overrides):
    settings = {"batch_size": 4, "lr": 1e-3, "val_every": 4, "log_every": 2, "seed": 7}
    config = TrainConfig(steps=steps, progress=False, **{**settings, **overrides})
    torch.manual_seed(0)
    model = models.build("srcnn", features=(8, 4))

    def score(net):
        return {"psnr_y": sum(TASK.evaluate(net, IMAGES[:1])["psnr_y"])}

    patches = RandomPatches(IMAGES, 16, seed=config.seed)
    return Trainer(model, patches, F.mse_loss, config, TASK.make_pair, validate or score, out_dir)


def test_last_pt_is_written_before_validating(tmp_path):
    calls = []

    def validate(net):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("val/broken.png: cannot read")
        return {"psnr_y": 20.0}

    with pytest.raises(OSError, match="broken.png"):
        _trainer(tmp_path, validate=validate).fit()
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 8  # the 8 steps are kept


def test_checkpoint_every(monkeypatch, tmp_path):
    saved = []
    trainer = _trainer(tmp_path, steps=10, checkpoint_every=3, val_every=5)
    real = trainer.save
    monkeypatch.setattr(
        trainer, "save", lambda name: saved.append((name, trainer.step)) or real(name)
    )
    trainer.fit()
    assert [s for name, s in saved if name == "last.pt"] == [3, 5, 6, 9, 10, 10]


def test_checkpoint_every_on_the_command_line(finished):
    assert read_checkpoint(finished / "last.pt")["config"]["checkpoint_every"] == 3


def test_tensorboard_has_no_duplicated_steps_after_resumes(tmp_path):
    _trainer(tmp_path / "straight").fit()
    for stop in (3, 6, 9, None):
        _trainer(tmp_path / "resumed").fit(resume=True, stop_at=stop)
    steps = tensorboard_steps(tmp_path / "resumed")
    assert steps == tensorboard_steps(tmp_path / "straight")
    assert steps["train/loss"] == [2, 4, 6, 8, 10, 12] and steps["val/psnr_y"] == [4, 8, 12]


def test_temporary_files_of_killed_saves_are_removed(tmp_path, capsys):
    _trainer(tmp_path).fit(stop_at=4)
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    _trainer(tmp_path).fit(resume=True, stop_at=6)
    assert not list(tmp_path.glob(".*.tmp"))
    assert "removed 1 temporary file(s) left by an interrupted save" in capsys.readouterr().err


def test_checkpoints_load_with_weights_only(finished):
    for name in ("last.pt", "best.pt"):
        state = torch.load(finished / name, weights_only=True)  # no extra allowed globals
        assert state["step"] > 0 and "numpy" in state["rng"]


def test_a_checkpoint_of_an_older_version_still_resumes(tmp_path):
    _trainer(tmp_path).fit(stop_at=4)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["rng"]["numpy"] = np.random.get_state()  # what restorelab 0.1 saved: a NumPy array
    del state["running"]
    torch.save(state, tmp_path / "last.pt")
    resumed = _trainer(tmp_path)
    resumed.fit(resume=True)
    assert resumed.step == 12


def test_a_checkpoint_holding_code_is_refused(tmp_path):
    torch.save({"model": {}, "hook": shutil.rmtree}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil.pt: holds Python objects other than weights"):
        read_checkpoint(tmp_path / "evil.pt")
