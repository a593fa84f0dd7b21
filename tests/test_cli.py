import json
import subprocess
import sys

import pytest

from restorelab.cli import main


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "restorelab.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("demo", "train", "eval", "labs"):
        assert command in out


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The README's main job with 600 of its 1000 steps (its cosine schedule then ends at step
    600): still 0.6 dB above bicubic, in 40% less of the unit tests' critical path. Session
    scope: xdist may run other modules' tests between this module's on the same worker, which
    would tear a module fixture down and train it again."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--steps", "600"]) == 0
    return out


# one pytest-xdist worker runs every test of the demo run (--dist loadgroup), so it runs once
ON_THE_DEMOS_WORKER = pytest.mark.xdist_group("demo_run")


@pytest.mark.slow
@ON_THE_DEMOS_WORKER
def test_demo_beats_bicubic_and_writes_figures(demo_run):
    assert (demo_run / "comparison.png").stat().st_size > 10_000
    assert (demo_run / "curves.png").stat().st_size > 10_000
    metrics = json.loads((demo_run / "metrics.json").read_text())
    for key in ("bicubic_psnr_y", "model_psnr_y", "bicubic_ssim_y", "model_ssim_y", "seconds"):
        assert isinstance(metrics[key], float)
    assert 20 < metrics["bicubic_psnr_y"] < 45
    assert metrics["model_psnr_y"] >= metrics["bicubic_psnr_y"] + 0.3  # the bar
    assert metrics["model_ssim_y"] > metrics["bicubic_ssim_y"]


@ON_THE_DEMOS_WORKER
def test_eval_on_a_folder(demo_run, tmp_path, capsys):
    from restorelab.data import embedded_photos
    from restorelab.io import write_image

    write_image(tmp_path / "cat.png", embedded_photos("val")[0])
    assert main(["eval", str(demo_run / "best.pt"), "--folder", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| bicubic |" in out and "| best.pt |" in out


@ON_THE_DEMOS_WORKER
def test_eval_on_set5_uses_matlab_lr(demo_run, datasets_dir, capsys):
    assert main(["eval", str(demo_run / "best.pt"), "--benchmark", "Set5"]) == 0
    assert "Set5 (5 images; MATLAB LR files" in capsys.readouterr().out


def test_eval_reports_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_train_resumes(tmp_path, capsys):
    args = [
        "train",
        "--steps",
        "6",
        "--val-every",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert main([*args[:2], "9", *args[3:], "--resume"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == 9


@pytest.mark.parametrize(
    ("task_args", "benchmark", "baseline"),
    [
        (["--model", "arcnn", "--task", "jpeg", "--quality", "20"], "Classic5", "JPEG input"),
        (["--model", "srcnn", "--task", "denoise", "--sigma", "25"], "Set12", "noisy input"),
    ],
)
def test_train_and_eval_other_tasks(task_args, benchmark, baseline, datasets_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    common = ["--steps", "2", "--val-every", "2", "--batch-size", "2", "--patch-size", "24"]
    assert main(["train", *task_args, *common, "--out", out]) == 0
    assert main(["eval", f"{out}/last.pt", "--benchmark", benchmark]) == 0
    table = capsys.readouterr().out
    assert f"| {baseline} |" in table and "| last.pt |" in table
    assert f"on {benchmark}" in table


def _quick_params(label: str) -> int:
    """The parameter count a chapter's QUICK run stored in restorelab/comparison.csv."""
    import csv
    from pathlib import Path

    import restorelab

    table = Path(restorelab.__file__).parent / "comparison.csv"
    with table.open() as handle:
        counts = {r["params"] for r in csv.DictReader(handle) if r["model"].startswith(label)}
    assert len(counts) == 1, counts
    return int(counts.pop())


@pytest.mark.parametrize(
    ("label", "chapter_build", "args"),
    [  # the chapters build these as the paper preset with MODEL_KWARGS overrides (QUICK)
        ("DnCNN small", ("dncnn", {"depth": 8, "features": 32, "batch_norm": False}),
         ["--model", "dncnn", "--task", "denoise", "--patch-size", "40"]),
        ("MSRResNet small", ("msrresnet", {"features": 32, "num_blocks": 4}),
         ["--model", "msrresnet", "--scale", "4", "--channels", "rgb", "--no-pre-upsample",
          "--patch-size", "64"]),
    ],
)  # fmt: skip
def test_presets_reproduce_the_chapters_quick_networks(label, chapter_build, args, tmp_path):
    import torch

    from restorelab import models
    from restorelab.experiment import load_checkpoint
    from restorelab.io import write_image
    from restorelab.train import seed_everything

    write_image(tmp_path / "val" / "a.png", torch.rand(3, 64, 64))
    out = tmp_path / "run"
    common = [
        "--preset",
        "small",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--val",
        str(tmp_path / "val"),
    ]
    assert main(["train", *args, *common, "--out", str(out)]) == 0
    model, _ = load_checkpoint(out / "last.pt")
    assert models.count_params(model) == _quick_params(label)
    # same architecture and, from the same seed, the same initial weights as the chapter's
    name, overrides = chapter_build
    seed_everything(0)
    chapter = models.build(name, "paper", **overrides)
    seed_everything(0)
    preset = models.build(name, "small")
    assert chapter.state_dict().keys() == preset.state_dict().keys()
    for key, value in chapter.state_dict().items():
        assert torch.equal(value, preset.state_dict()[key]), key


@pytest.mark.parametrize(
    ("args", "baseline", "task_settings"),
    [
        (["--task", "sr", "--scale", "3"], "bicubic", {"scale": 3}),
        (["--task", "jpeg", "--quality", "20"], "JPEG input", {"quality": 20}),
        (["--task", "denoise", "--sigma", "50"], "noisy input", {"sigma": 50.0}),
    ],
)
def test_eval_scores_the_baseline_without_a_checkpoint(
    args, baseline, task_settings, tmp_path, capsys
):
    from restorelab.data import embedded_photos
    from restorelab.experiment import make_task, mean_scores
    from restorelab.io import read_image, write_image

    for i, photo in enumerate(embedded_photos("val")[:2]):
        write_image(tmp_path / f"{i}.png", photo[:, :96, :120])
    json_path = tmp_path / "scores.json"
    assert main(["eval", *args, "--folder", str(tmp_path), "--json", str(json_path)]) == 0
    assert f"| {baseline} |" in capsys.readouterr().out
    task = make_task(args[1], **task_settings)
    images = [read_image(tmp_path / f"{i}.png", "any") for i in range(2)]
    want = mean_scores(task.evaluate(None, images))
    assert json.loads(json_path.read_text()) == {baseline: pytest.approx(want, abs=1e-12)}


def test_eval_self_ensemble_lifts_a_trained_reference(tmp_path, capsys):
    """EDSR's '+' rows: the mean over the 8 flips and turns scores higher than one pass."""
    scores = {}
    for extra in ([], ["--self-ensemble"]):
        json_path = tmp_path / f"scores{len(extra)}.json"
        assert main(["eval", "srcnn-x2", *extra, "--json", str(json_path)]) == 0
        scores[bool(extra)] = json.loads(json_path.read_text())["srcnn-x2"]["psnr_y"]
    assert scores[True] > scores[False] + 0.02  # measured: +0.08 dB on the embedded photos
    assert main(["eval", "--task", "sr", "--self-ensemble"]) == 2
    assert "--self-ensemble: only a model's outputs change" in capsys.readouterr().err


def test_eval_finds_any_benchmark_folder_by_name(tmp_path, monkeypatch, capsys):
    import torch

    from restorelab.io import write_image

    write_image(tmp_path / "MyPhotos" / "a.png", torch.rand(3, 40, 48))
    monkeypatch.setenv("RESTORELAB_DATA", str(tmp_path))
    assert main(["eval", "--task", "denoise", "--benchmark", "MyPhotos"]) == 0
    assert "on MyPhotos (1 images)" in capsys.readouterr().out
