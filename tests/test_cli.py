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


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The main job exactly as the README runs it (about 2 minutes on 2 CPU cores)."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_demo_beats_bicubic_and_writes_figures(demo_run):
    assert (demo_run / "comparison.png").stat().st_size > 10_000
    assert (demo_run / "curves.png").stat().st_size > 10_000
    metrics = json.loads((demo_run / "metrics.json").read_text())
    for key in ("bicubic_psnr_y", "model_psnr_y", "bicubic_ssim_y", "model_ssim_y", "seconds"):
        assert isinstance(metrics[key], float)
    assert 20 < metrics["bicubic_psnr_y"] < 45
    assert metrics["model_psnr_y"] >= metrics["bicubic_psnr_y"] + 0.3  # the bar
    assert metrics["model_ssim_y"] > metrics["bicubic_ssim_y"]


def test_eval_on_a_folder(demo_run, tmp_path, capsys):
    from restorelab.data import embedded_photos
    from restorelab.io import write_image

    write_image(tmp_path / "cat.png", embedded_photos("val")[0])
    assert main(["eval", str(demo_run / "best.pt"), "--folder", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| bicubic |" in out and "| best.pt |" in out


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
