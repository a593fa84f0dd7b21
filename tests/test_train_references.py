"""scripts/train_references.py, reference_plans.py and reference_jobs.py: the deadline of the modern jobs,
packing and publishing the modern half, and the chapters' view of a reference not trained yet
(no GPU needed)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restorelab import models, pretrained
from restorelab.train import TrainConfig, Trainer

# the scripts import each other by name, as when run as programs (scripts/ is then on sys.path);
# render_pages's spawned workers inherit sys.path and import reference_jobs the same way
sys.path.append(str(Path(__file__).parents[1] / "scripts"))
jobs = importlib.import_module("reference_jobs")
plans = importlib.import_module("reference_plans")
refs = importlib.import_module("train_references")


def test_missing_modern_card_reads_as_not_trained_yet(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    found = pretrained.card("descanning-kbnet")
    assert found["status"] == "not trained yet" and found["chapter"] == 5
    assert "pending the GPU run" in pretrained.summary("descanning-kbnet")
    assert pretrained.descanning_rows() == []


def test_cards_name_the_checkouts_commit_and_say_when_it_was_edited(tmp_path):
    assert refs.checkout_commit(tmp_path) == "unknown"  # not a git checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    (tmp_path / "code.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "code.py"], ["commit", "-qm", "code"]):
        subprocess.run([*git, *args], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert refs.checkout_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert refs.checkout_commit(tmp_path) == head + "+dirty"


def test_a_card_lists_only_the_train_commands_that_ran_its_job(tmp_path):
    for argv in (["train", "--names", "descanning-kbnet", "--minutes", "110"],
                 ["train", "--names", "descanning-srresnet-x1", "descanning-dncnn", "--out", "x y"],
                 ["train", "--minutes", "9"]):  # fmt: skip
        refs.record_command(tmp_path, argv)
    shown = refs.trained_by(tmp_path / "descanning-dncnn")
    assert shown == ("python scripts/train_references.py train --names descanning-srresnet-x1 descanning-dncnn "
                     "--out 'x y' then python scripts/train_references.py train --minutes 9 (job descanning-dncnn)")  # fmt: skip
    assert "descanning-kbnet --minutes 110 then" in refs.trained_by(tmp_path / "descanning-kbnet")
    assert refs.trained_by(tmp_path / "upscaler").startswith(
        "python scripts/train_references.py train --minutes 9"
    )


def test_fit_until_stops_after_a_chunk_once_the_deadline_passed(tmp_path):
    pairs = [(torch.rand(1, 8, 8), torch.rand(1, 8, 8)) for _ in range(4)]
    config = TrainConfig(steps=40, batch_size=2, device="cpu", progress=False, tensorboard=False,
                         prefetch=0, val_every=0)  # fmt: skip
    trainer = Trainer(models.build("dncnn", depth=2, features=4), pairs, F.mse_loss, config,
                      out_dir=tmp_path / "run")  # fmt: skip
    done = plans.fit_until(trainer, tmp_path / "run", until=time.time() - 1)
    assert done["steps_done"] == 40 // plans.CHUNKS  # one chunk, then the clock stops it
    slow = trainer.fit  # a chunk that takes 0.5 s, 0.7 s before the deadline: no second chunk

    def fit_slowly(**kwargs):
        time.sleep(0.5)
        return slow(**kwargs)

    trainer.fit = fit_slowly
    done = plans.fit_until(trainer, tmp_path / "run", until=time.time() + 0.7)
    assert done["steps_done"] == 2 * 40 // plans.CHUNKS
    trainer.fit = slow
    again = plans.fit_until(trainer, tmp_path / "run", until=time.time() + 60)
    assert again["steps_done"] == 40  # resumed from last.pt to the end


def test_render_pages_on_spawned_workers_matches_the_synthetic_scans(tmp_path):
    """16 pages or more go to a spawn pool: its workers import reference_jobs by name."""
    from restorelab.data import SyntheticScans

    plan = dataclasses.replace(plans.DRY, pages=15, val_pages=1, page_size=32)
    jobs.render_pages(plan, tmp_path / "pages.pt")
    stored = torch.load(tmp_path / "pages.pt", weights_only=True)
    assert len(stored["train"]) == 15 and len(stored["val"]) == 1
    for pairs, seed, index in ((stored["train"], 0, 14), (stored["val"], 1, 0)):
        scan, clean = SyntheticScans(len(pairs), 32, seed=seed)[index]
        assert torch.equal(pairs[index][0], scan.mul(255).round().to(torch.uint8))
        assert torch.equal(pairs[index][1], clean.mul(255).round().to(torch.uint8))


def test_pack_and_publish_a_modern_reference(tmp_path):
    runs = tmp_path / "runs"
    ctx = plans.Context(plans.DRY, runs / "upscaler", "embedded", 0.0, torch.device("cpu"), "abc")
    net = models.build("srcnn", "rgb", scale=2, features=(8, 4))
    spec = {"architecture": "srcnn", "preset": "rgb", "kwargs": {"scale": 2, "features": [8, 4]}}
    ctx.record("inpaint-upscaler-x2", net, spec, chapter=8, steps=4, steps_done=4, steps_per_s=1.0,
               batch_size=2, data="d", recipe="r", evaluation={"model": {"psnr_y": 30.0},
               "input": {"psnr_y": 29.0}}, fp16_gap=0.0,
               targets=[plans.target("above bicubic", 30.0, 29.0, higher=True)])  # fmt: skip
    (ctx.out / "run.json").write_text(json.dumps({"wall_seconds": 1.0, "hardware": "CPU",
                                                  "torch": "x", "commit": "abc", "date": "d",
                                                  "settings": "--fast"}))  # fmt: skip
    (ctx.out / "result.json").write_text(json.dumps({"references": ctx.references}))
    refs.record_command(runs, ["train", "--names", "upscaler", "--minutes", "9"])
    refs.record_command(runs, ["train", "--names", "upscaler", "--steps-scale", "2"])  # resumed
    (tmp_path / "out").mkdir()
    refs.pack(runs, tmp_path / "out" / "refs.tar.gz")
    with tarfile.open(tmp_path / "out" / "refs-1.tar.gz") as archive:
        assert "upscaler/weights/inpaint-upscaler-x2.safetensors" in archive.getnames()
    assert "| inpaint-upscaler-x2 | 4 / 4 | 1.0 | psnr_y 30.000 | above bicubic: met |" in (
        refs.summary(runs)
    )
    found = refs.results(runs)
    refs.publish_modern(
        "inpaint-upscaler-x2", found["inpaint-upscaler-x2"], tmp_path / "w", tmp_path / "h"
    )
    card = json.loads((tmp_path / "w" / "inpaint-upscaler-x2.json").read_text())
    assert card["targets"][0]["passed"] is True and "float16" in card["stored_as"]
    assert card["settings"] == "--fast"  # or the fp32-eager retry, and why
    assert card["command"] == (  # the command that trained it, as `train` recorded it
        "python scripts/train_references.py train --names upscaler --minutes 9 then python "
        "scripts/train_references.py train --names upscaler --steps-scale 2 (job upscaler)"
    )
    assert (tmp_path / "w" / "inpaint-upscaler-x2.safetensors").stat().st_size < 20_000


def test_a_published_descanning_reference_reaches_the_chapters(monkeypatch, tmp_path):
    """The dry-run job of one descanning row, published: what chapters 5, 6 and 9 show."""
    import matplotlib

    from restorelab.descanning import INPUT_ROW, descanning_table
    from restorelab.viz import descanning_figure

    runs = tmp_path / "runs"
    runs.mkdir()
    jobs.render_pages(plans.DRY, runs / "pages.pt")  # the parent renders them once for the rows
    ctx = plans.Context(plans.DRY, runs / "descanning-dncnn", "embedded", time.time() + 60,
                       torch.device("cpu"), "abc")  # fmt: skip
    jobs.run_modern("descanning-dncnn", ctx)
    found = refs.results(runs)
    refs.publish_modern(
        "descanning-dncnn", found["descanning-dncnn"], tmp_path / "w", tmp_path / "h"
    )
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "w")
    rows = pretrained.descanning_rows()
    assert [row["model"] for row in rows][0] == INPUT_ROW and len(rows) == 2
    assert rows[1]["y_mae"] == round(json.loads((tmp_path / "w" / "descanning-dncnn.json")
                                                .read_text())["evaluation"]["model"]["y_mae"], 3)  # fmt: skip
    text = pretrained.references_markdown(["descanning-dncnn", "descanning-kbnet"])
    assert "Targets: Y-MAE at most half" in text and "pending the GPU run" in text  # one each
    table = descanning_table("reference", live=rows)
    assert [row["setting"] for row in table.rows] == ["reference", "reference"]
    figure = descanning_figure(rows)
    assert len(figure.axes[0].patches) == 2
    matplotlib.pyplot.close(figure)
    assert pretrained.load("descanning-dncnn") is not None  # the card rebuilds the network

    # weights over the package's limit: never tracked, loaded from the download cache
    monkeypatch.setattr(refs, "PACKAGE_LIMIT", 1_000)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "w2")
    monkeypatch.setattr(pretrained, "CACHE", tmp_path / "cache")
    refs.publish_modern("descanning-dncnn", found["descanning-dncnn"], tmp_path / "w2",
                        tmp_path / "hosted")  # fmt: skip
    assert not (tmp_path / "w2" / "descanning-dncnn.safetensors").exists()
    assert "not packaged" in pretrained.info("descanning-dncnn")["stored_as"]
    with pytest.raises(FileNotFoundError, match="put the file in"):
        pretrained.load("descanning-dncnn")
    pretrained.CACHE.mkdir()
    (tmp_path / "hosted" / "descanning-dncnn.safetensors").rename(
        pretrained.CACHE / "descanning-dncnn.safetensors"
    )
    assert pretrained.weights_path("descanning-dncnn").parent == pretrained.CACHE
    assert pretrained.load("descanning-dncnn") is not None


def test_a_job_that_diverges_is_trained_again_in_fp32_eager(monkeypatch, tmp_path):
    """The GPU call comes once a session: a --fast run that diverges (or does not compile) is
    retried in fp32 eager, not lost; a fault that eager training meets too is raised."""
    from restorelab.train import TrainingDiverged

    calls = []

    def runner(job, ctx):
        settings = ctx.fast("restormer")
        calls.append(settings)
        (ctx.out / "partial").write_text("from the diverged run")
        if "amp" not in settings:  # the --fast preset (CPU: the device sampler only)
            raise TrainingDiverged(1, {"loss": float("nan")}, TrainConfig())
        ctx.references["r"] = {"settings": settings}

    monkeypatch.setitem(jobs.MODERN_RUNNERS, "upscaler", runner)
    ctx = plans.Context(plans.DRY, tmp_path / "upscaler", "embedded", 0.0, torch.device("cpu"), "a")
    jobs.run_modern("upscaler", ctx)
    assert calls == [{"sampler": "device"}, {"sampler": "device", "amp": "off"}]
    run = json.loads((ctx.out / "run.json").read_text())
    assert run["settings"].startswith("fp32 eager (the --fast run failed: TrainingDiverged: step 1")
    assert json.loads((ctx.out / "result.json").read_text())["references"]["r"]["settings"]
    (ctx.out / "run.json").write_text(json.dumps({**run, "wall_seconds": 1000.0}))
    jobs.run_modern("upscaler", ctx)  # resumed (from last.pt): the earlier calls' time counts
    assert 1000 <= json.loads((ctx.out / "run.json").read_text())["wall_seconds"] < 1100

    def stopped_by_the_deadline(job, ctx):
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)  # what train_all's proc.terminate() sends

    monkeypatch.setitem(jobs.MODERN_RUNNERS, "upscaler", stopped_by_the_deadline)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        jobs.run_modern("upscaler", ctx)
    assert stop.value.code == 128 + signal.SIGTERM
    run = json.loads((ctx.out / "run.json").read_text())  # the stopped call's time is kept
    assert 1000.3 <= run["wall_seconds"] < 1100 and "SIGTERM" in run["settings"]
    assert signal.getsignal(signal.SIGTERM) is handler  # put back

    def broken(job, ctx):
        raise KeyError("a fault of the job")

    monkeypatch.setitem(jobs.MODERN_RUNNERS, "upscaler", broken)
    with pytest.raises(KeyError, match="a fault of the job"):
        jobs.run_modern("upscaler", plans.Context(plans.DRY, tmp_path / "b", "embedded", 0.0,
                                                  torch.device("cpu"), "a"))  # fmt: skip


def test_a_classic_reference_that_fails_with_fast_is_trained_again_in_fp32_eager(
    monkeypatch, tmp_path
):
    commands = []

    def train(argv):
        commands.append(argv)
        Path(argv[argv.index("--out") + 1]).mkdir(parents=True, exist_ok=True)
        return 1 if "--fast" in argv else 0  # --fast fails, fp32 eager trains

    monkeypatch.setattr(refs, "restorelab_main", train)
    refs.run_one("srcnn-x2", "data", tmp_path, "abc", 4)
    assert ["--fast" in c for c in commands] == [True, False]
    assert "--amp off" in " ".join(commands[1]) and "--resume" not in commands[1]
    run = json.loads((tmp_path / "srcnn-x2" / "run.json").read_text())
    assert "--amp off" in run["command"] and "--fast" not in run["command"]
    assert run["settings"] == (
        "fp32 eager (the --fast run failed: RuntimeError: restorelab train exited with status 1)"
    )
    monkeypatch.setattr(refs, "restorelab_main", lambda argv: 2)  # fails in fp32 eager too
    with pytest.raises(RuntimeError, match="restorelab train exited with status 2"):
        refs.run_one("dncnn-s25", "data", tmp_path, "abc", 4)


def test_the_sweep_goes_on_without_lpips_where_the_package_is_missing(monkeypatch, capsys):
    """The GPU machine has no lpips package: chapter 7's job must still finish, NIQE only."""
    monkeypatch.setitem(sys.modules, "lpips", None)  # `import lpips` raises ImportError
    assert jobs.lpips_metric(torch.device("cpu")) is None
    assert "LPIPS left out of the interpolation sweep: LPIPS needs the lpips package" in (
        capsys.readouterr().out
    )
