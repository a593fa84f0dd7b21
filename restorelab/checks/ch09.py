"""Checks of lab 9 (the descanning competition): the Y-MAE by hand, the 2023 CSV, tiled
inference, a submission folder that passes the contract."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restorelab.checks import run_check


def _small_competition(root: Path) -> tuple[Path, Path]:
    """A competition of 5 synthetic 48x48 pages, 2 of them test pages: (public, private)."""
    from restorelab.competition import make, synthetic_pairs

    make(synthetic_pairs(5, 48, page_seed=9), root, test_count=2, seed=3)
    return root / "public", root / "private"


def _small_model() -> tuple[nn.Module, dict]:
    """A seeded 3-layer colour DnCNN and its model card."""
    from restorelab import models

    kwargs = {"depth": 3, "features": 8, "batch_norm": False}
    torch.manual_seed(0)
    model = models.build("dncnn", "color_blind", **kwargs).eval()
    return model, {"architecture": "dncnn", "preset": "color_blind", "kwargs": kwargs}


def check_y_mae(student: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Chapter 9: ``student(pred, target)`` on uint8 (H, W, 3) RGB arrays gives the competition
    metric, the mean over pixels of |Y_pred - Y_target|, Y the full-range 8-bit luma
    ``(4899 R + 9617 G + 1868 B + 8192) >> 14`` (OpenCV), as :func:`restorelab.metrics.y_mae`."""
    from restorelab.metrics import full_range_y, y_mae

    def check() -> None:
        rng = np.random.default_rng(0)
        for shape in ((5, 7, 3), (16, 9, 3)):
            pred = rng.integers(0, 256, shape, dtype=np.uint8)
            target = np.clip(pred.astype(int) + rng.integers(-40, 41, shape), 0, 255)
            target = target.astype(np.uint8)
            got, want = float(student(pred, target)), y_mae(pred, target)
            if abs(got - want) < 1e-9:
                continue
            means = [float(full_range_y(x).double().mean()) for x in (pred, target)]
            assert abs(got - abs(means[0] - means[1])) > 0.05, (
                "that is the error of the mean Y (the 2023 CSV's number): take |Y_pred - Y_target| "
                "per pixel first, then the mean"
            )
            assert got > 1, f"{got:.4f}: use the 8-bit scale (0 to 255), not [0, 1]"
            raise AssertionError(
                f"{got:.6f}, expected {want:.6f}: integer levels, OpenCV's rounding "
                "(4899 R + 9617 G + 1868 B + 8192) >> 14 (in int64: no uint8 overflow), "
                "absolute differences, mean over pixels"
            )

    return run_check("Y-MAE by hand", check)


def check_mean_y_csv(student: Callable[[dict, Path], object]) -> bool:
    """Chapter 9: ``student(images, path)`` writes the 2023 CSV (header ``Image File, Y Channel
    Value``, one row per image with its mean full-range Y) that the scorer reads and scores
    exactly as the competition's sample submission."""
    from restorelab.competition import score
    from restorelab.competition.make import mean_y
    from restorelab.io import list_images, read_image

    def check() -> None:
        with tempfile.TemporaryDirectory() as folder:
            public, private = _small_competition(Path(folder) / "comp")
            images = {p.name: read_image(p) for p in list_images(public / "test" / "scan")}
            path = Path(folder) / "submission.csv"
            student(images, path)
            assert path.is_file(), f"no file written at {path}"
            with path.open(newline="") as handle:
                rows = list(csv.reader(handle))
            assert rows and [c.strip() for c in rows[0]] == ["Image File", "Y Channel Value"], (
                f"first row {rows[:1]}: the header must be Image File, Y Channel Value"
            )
            assert len(rows) == len(images) + 1, f"{len(rows) - 1} rows for {len(images)} images"
            for name, value in rows[1:]:
                assert name in images, f"{name!r}: not a test image file name ({sorted(images)})"
                want = mean_y(images[name])
                assert abs(float(value) - want) < 1e-3, (
                    f"{name}: {value}, expected its mean full-range 8-bit Y {want:.4f}"
                )
            mine = score(path, private)
            assert mine["status"] == "ok", f"the scorer refused it: {mine['errors']}"
            sample = score(public / "sample_submission.csv", private)
            assert abs(mine["score"] - sample["score"]) < 1e-3, (
                f"scored {mine['score']:.4f}, the sample submission {sample['score']:.4f}"
            )

    return run_check("2023 CSV", check)


def check_tiled_predict(student: Callable[..., torch.Tensor]) -> bool:
    """Chapter 9: ``student(model, image, tile, overlap)`` on a (C, H, W) image runs the model
    on tiles of at most ``tile`` x ``tile`` pixels overlapping by ``overlap`` and stitches an
    output equal to the whole-image one (to 1e-5 for a model that sees ``overlap // 2`` pixels
    around each output pixel)."""
    from restorelab.infer import predict

    def check() -> None:
        model, _ = _small_model()  # 3 convs: each output sees 3 pixels on each side
        largest: list[int] = []
        hook = model.register_forward_pre_hook(
            lambda m, args: largest.append(max(args[0].shape[-2:]))
        )
        try:
            for (h, w), tile, overlap in (((40, 56), 24, 8), ((33, 47), 16, 8), ((12, 10), 32, 8)):
                image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(h))
                largest.clear()
                with torch.no_grad():
                    got = student(model, image, tile, overlap)
                assert largest, "the model was never called"
                assert max(largest) <= tile, f"the model saw {max(largest)} pixels, over the tile"
                assert tuple(got.shape) == (3, h, w), (
                    f"output {tuple(got.shape)}, expected {(3, h, w)}"
                )
                want = predict(model, image)
                error = float((got - want).abs().max())
                assert error < 1e-5, (
                    f"{h}x{w} in tiles of {tile}: differs from the whole image by up to {error:.3g} "
                    "(keep each tile's output only where it lies overlap // 2 from a cut)"
                )
        finally:
            hook.remove()

    return run_check("tiled inference", check)


def check_submission(student: Callable[..., object]) -> bool:
    """Chapter 9: ``student(model, card, data_dir, output_dir)`` writes ``outputs/NAME.png`` for
    every test scan, ``model.json`` and ``model.safetensors``; the folder passes
    :func:`restorelab.competition.check_model` and scores what the model's own outputs score."""
    from restorelab.competition import check_model, score, write_submission
    from restorelab.models import count_params

    def check() -> None:
        model, card = _small_model()
        with tempfile.TemporaryDirectory() as folder:
            public, private = _small_competition(Path(folder) / "comp")
            mine, reference = Path(folder) / "mine", Path(folder) / "reference"
            mine.mkdir()
            student(model, card, public, mine)
            count = check_model(mine)  # raises ContractError naming the file that is wrong
            assert count == count_params(model), (
                f"{count} parameters, expected {count_params(model)}"
            )
            report = score(mine / "outputs", private)
            assert report["status"] == "ok", f"the scorer refused the outputs: {report['errors']}"
            write_submission(model, card, public, reference)
            want = score(reference / "outputs", private)["score"]
            assert abs(report["score"] - want) < 1e-6, (
                f"Y-MAE {report['score']:.4f}, the model's own outputs score {want:.4f}: restore "
                "each scan with the model, 8-bit PNG named like the scan"
            )

    return run_check("submission folder", check)
