"""Score a submission against the private folder, never crashing on what a team sent.

Taught in the course appendix ("Running the competition").

A submission is a folder of restored images (one per test scan, matched by name without the
suffix: ``page_0003.png`` for ``test/scan/page_0003.png``) or the 2023 CSV
(``Image File, Y Channel Value``: one mean-Y per test image). The report is a dict::

    {"format": "images" | "csv", "metric": ..., "status": "ok" | "failed",
     "score": float | None, "psnr": float | None,
     "images": {name: {"y_mae": ..., "psnr": ...} | {"error": ...}}, "errors": [str, ...]}

Images: per-image and overall Y-MAE (full-range 8-bit Y, mean over all test pixels; see
:func:`restorelab.metrics.y_mae`) and PSNR (8-bit RGB, peak 255). CSV: the MAE over images of
the mean Y, labelled as that metric. A missing, extra, wrongly sized, unreadable, NaN,
truncated or linked (symlink) file is a named error in ``errors``; any error makes the
submission "failed" with no overall score (a mean over some of the images would not compare).
"""

from __future__ import annotations

import csv
import json
import math
import stat
from pathlib import Path

import torch
from PIL import Image

from restorelab.competition.make import CSV_HEADER, CSV_METRIC, METRIC, mean_y
from restorelab.io import IMAGE_SUFFIXES, ImageReadError, file_sha256, grey_to_rgb, read_image
from restorelab.metrics import psnr, y_mae

MAX_FILE_BYTES = 256 << 20  # no restored image or CSV is larger than this
MAX_CSV_BYTES = 16 << 20


class Truth:
    """The private folder: the manifest's test names and sizes, the clean images read once.

    Raises ValueError when a clean image does not match its recorded sha256.
    """

    def __init__(self, private: str | Path) -> None:
        self.folder = Path(private)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: no such file (is this a private folder?)")
        self.manifest = json.loads(manifest_path.read_text())
        self.names: list[str] = list(self.manifest["test"])
        self.sizes = {name: tuple(hw) for name, hw in self.manifest["sizes"].items()}
        self.clean: dict[str, torch.Tensor] = {}
        for name in self.names:
            path = self.folder / "test" / "clean" / name
            if file_sha256(path) != self.manifest["sha256"]["private"].get(f"test/clean/{name}"):
                raise ValueError(f"{path}: does not match the sha256 in {manifest_path}")
            self.clean[name] = read_image(path, "rgb")
        self.by_stem = {Path(name).stem: name for name in self.names}


def _failed(kind: str, metric: str, errors: list[str], images: dict | None = None) -> dict:
    return {"format": kind, "metric": metric, "status": "failed", "score": None, "psnr": None,
            "images": images or {}, "errors": errors}  # fmt: skip


def _regular(path: Path) -> str | None:
    """Why ``path`` cannot be read as a submitted file (symlink, folder, too large), or None."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return f"{path.name}: a symbolic link, not a file (refused)"
    if not stat.S_ISREG(info.st_mode):
        return f"{path.name}: not a regular file"
    if info.st_size > MAX_FILE_BYTES:
        return f"{path.name}: {info.st_size} bytes, over the {MAX_FILE_BYTES >> 20} MB limit"
    return None


def _score_image(path: Path, clean: torch.Tensor, size: tuple[int, int]) -> dict:
    problem = _regular(path)
    if problem:
        return {"error": problem}
    try:
        with Image.open(path) as header:
            width, height = header.size
    except Exception as error:  # PIL raises many types for a bad file
        return {"error": f"{path.name}: not an image ({type(error).__name__}: {error})"}
    if (height, width) != size:
        return {"error": f"{path.name}: {height}x{width} pixels, expected {size[0]}x{size[1]}"}
    try:
        restored = read_image(path, "any")
    except ImageReadError as error:
        return {"error": str(error).replace(str(path), path.name)}
    except Exception as error:  # a decoder bug must not stop the scorer
        return {"error": f"{path.name}: cannot read the image ({type(error).__name__}: {error})"}
    rgb = grey_to_rgb(restored) if restored.shape[0] == 1 else restored
    return {"y_mae": y_mae(restored, clean), "psnr": psnr(rgb, clean), "pixels": size[0] * size[1]}


def score_folder(folder: str | Path, truth: Truth) -> dict:
    """Score a folder of restored images (see module doc). Hidden files (``.name``) are ignored."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return _failed("images", METRIC, [f"{folder}: no such folder of restored images"])
    errors, by_stem = [], {}
    expected = truth.by_stem
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.stem not in expected:
            errors.append(f"{path.name}: extra file (not one of the {len(expected)} test images)")
        elif path.stem in by_stem:
            errors.append(f"{by_stem[path.stem].name} and {path.name}: two files for one image")
        else:
            by_stem[path.stem] = path
    images = {}
    for stem, name in expected.items():
        if stem not in by_stem:
            images[name] = {"error": f"{stem}: missing (no restored image of {name})"}
        else:
            images[name] = _score_image(by_stem[stem], truth.clean[name], truth.sizes[name])
    errors += [result["error"] for result in images.values() if "error" in result]
    if errors:
        return _failed("images", METRIC, errors, images)
    pixels = sum(result.pop("pixels") for result in images.values())
    total = sum(
        result["y_mae"] * truth.sizes[n][0] * truth.sizes[n][1] for n, result in images.items()
    )
    mean_psnr = sum(result["psnr"] for result in images.values()) / len(images)
    return {"format": "images", "metric": METRIC, "status": "ok", "score": total / pixels,
            "psnr": mean_psnr, "images": images, "errors": []}  # fmt: skip


def _csv_rows(path: Path) -> tuple[list[list[str]], list[str]]:
    problem = _regular(path)
    if problem:
        return [], [problem]
    if path.stat().st_size > MAX_CSV_BYTES:
        return [], [f"{path.name}: over the {MAX_CSV_BYTES >> 20} MB limit of a CSV"]
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return [], [f"{path.name}: not UTF-8 text ({error})"]
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows or tuple(cell.strip() for cell in rows[0]) != CSV_HEADER:
        found = rows[0] if rows else "nothing"
        return [], [f"{path.name}: the header must be {', '.join(CSV_HEADER)} (found {found})"]
    return rows[1:], []


def score_csv(path: str | Path, truth: Truth) -> dict:
    """Score the 2023 CSV: ``Image File, Y Channel Value`` (see module doc)."""
    path = Path(path)
    rows, errors = _csv_rows(path)
    if errors:
        return _failed("csv", CSV_METRIC, errors)
    values: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) != 2:
            errors.append(f"{path.name} line {line}: {len(row)} fields, expected 2 (truncated?)")
            continue
        file, text = row[0].strip(), row[1].strip()
        name = truth.by_stem.get(Path(file).stem)
        try:
            value = float(text)
        except ValueError:
            errors.append(f"{path.name} line {line}: {text!r} is not a number")
            continue
        if name is None:
            errors.append(f"{path.name} line {line}: extra row {file!r} (not a test image)")
        elif name in values:
            errors.append(f"{path.name} line {line}: a second row for {file}")
        elif not math.isfinite(value):
            errors.append(f"{path.name} line {line}: the value of {file} is {text}")
        else:
            values[name] = value
    images = {name: {"mean_y": values[name], "abs_error": abs(values[name] - mean_y(truth.clean[name]))}
              for name in truth.names if name in values}  # fmt: skip
    missing = [name for name in truth.names if name not in values]
    errors += [f"{path.name}: no row for {name} (missing)" for name in missing]
    if errors:
        return _failed("csv", CSV_METRIC, errors, images)
    score = sum(result["abs_error"] for result in images.values()) / len(images)
    return {"format": "csv", "metric": CSV_METRIC, "status": "ok", "score": score, "psnr": None,
            "images": images, "errors": []}  # fmt: skip


def score(submission: str | Path, private: str | Path | Truth) -> dict:
    """Score ``submission`` (a folder of images or a ``.csv`` file) against ``private``."""
    truth = private if isinstance(private, Truth) else Truth(private)
    submission = Path(submission)
    try:
        if submission.suffix.lower() == ".csv":
            report = score_csv(submission, truth)
        else:
            report = score_folder(submission, truth)
    except Exception as error:  # the scorer reports, it never crashes on a submission
        report = _failed("unknown", METRIC, [f"{submission}: {type(error).__name__}: {error}"])
    report["submission"] = str(submission)
    return report


def describe(report: dict) -> str:
    """A score report in words: the metric, the overall score, one line per image, the errors."""
    if report["status"] == "ok":
        psnr_text = "" if report["psnr"] is None else f", PSNR {report['psnr']:.2f} dB (8-bit RGB)"
        lines = [f"{report['metric']}", f"score {report['score']:.4f}{psnr_text}"]
    else:
        lines = [f"{report['submission']}: failed ({len(report['errors'])} problems)"]
        lines += [f"  error: {error}" for error in report["errors"]]
    for name, result in report["images"].items():
        values = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
        lines.append(f"  {name}: {values or result.get('error', '')}")
    return "\n".join(lines)
