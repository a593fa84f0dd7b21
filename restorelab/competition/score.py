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
import io
import json
import os
import re
import threading
from pathlib import Path

import torch
from PIL import Image

from restorelab.competition.make import CSV_HEADER, CSV_METRIC, METRIC, mean_y
from restorelab.competition.untrusted import UntrustedFileError, open_folder, read_file
from restorelab.io import (
    ImageReadError,
    decode_image,
    file_sha256,
    grey_to_rgb,
    is_image_name,
    open_image,
    read_image,
)
from restorelab.metrics import psnr, y_mae

MAX_FILE_BYTES = 256 << 20  # no restored image or CSV is larger than this
MAX_CSV_BYTES = 16 << 20
MAX_JPEG_SCANS = 64  # a progressive JPEG has about 10; each scan decodes the whole page again
BYTES_PER_PIXEL = 16  # the most an image file may hold per expected pixel (float RGBA TIFF)
PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")  # "12", "12.5"; not "1_000", "1e3", "inf"
_DECODING = threading.Lock()  # Image.MAX_IMAGE_PIXELS is global: one decoder sets it at a time


class Truth:
    """The private folder: the manifest's test names and sizes, the clean images read once.

    Raises ValueError naming the file when the manifest is not readable or a clean image does
    not match its recorded sha256.
    """

    def __init__(self, private: str | Path) -> None:
        self.folder = Path(private)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: no such file (is this a private folder?)")
        try:
            self.manifest = json.loads(manifest_path.read_text())
            self.names: list[str] = [str(name) for name in self.manifest["test"]]
            self.sizes = {n: (int(hw[0]), int(hw[1])) for n, hw in self.manifest["sizes"].items()}
            digests = self.manifest["sha256"]["private"]
            missing = [name for name in self.names if name not in self.sizes]
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise ValueError(
                f"{manifest_path}: not a competition manifest ({type(error).__name__}: {error})"
            ) from None
        if missing:
            raise ValueError(f"{manifest_path}: no size recorded for {', '.join(missing)}")
        self.clean: dict[str, torch.Tensor] = {}
        for name in self.names:
            path = self.folder / "test" / "clean" / name
            if file_sha256(path) != digests.get(f"test/clean/{name}"):
                raise ValueError(f"{path}: does not match the sha256 in {manifest_path}")
            self.clean[name] = read_image(path, "rgb")
        self.by_stem = {Path(name).stem: name for name in self.names}


def _failed(kind: str, metric: str, errors: list[str], images: dict | None = None) -> dict:
    return {"format": kind, "metric": metric, "status": "failed", "score": None, "psnr": None,
            "images": images or {}, "errors": errors}  # fmt: skip


def decode_checked(data: bytes, name: str, size: tuple[int, int]) -> torch.Tensor:
    """The image in ``data`` as (C, H, W) in [0, 1], C 1 or 3, after its header was checked to
    declare ``size`` (H, W): a file declaring anything else is refused before any pixel is
    decoded, with Pillow's ``MAX_IMAGE_PIXELS`` at twice the expected pixels as the backstop.
    Raises :class:`ImageReadError` naming ``name``."""
    with _DECODING:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = 2 * size[0] * size[1]
        try:
            try:
                with open_image(io.BytesIO(data)) as header:
                    width, height, kind = *header.size, header.format
            except Image.DecompressionBombError as error:
                raise ImageReadError(f"{name}: declares too many pixels ({error})") from None
            except Exception as error:  # PIL raises many types for a bad file
                raise ImageReadError(
                    f"{name}: not an image ({type(error).__name__}: {error})"
                ) from None
            if (height, width) != size:
                raise ImageReadError(
                    f"{name}: {height}x{width} pixels, expected {size[0]}x{size[1]}"
                )
            # JPEG's start-of-scan marker (stuffed elsewhere), counted in JPEGs only
            scans = data.count(b"\xff\xda") if kind in ("JPEG", "MPO") else 0
            if scans > MAX_JPEG_SCANS:
                raise ImageReadError(
                    f"{name}: a JPEG of {scans} scans (at most {MAX_JPEG_SCANS}); save it as PNG"
                )
            try:
                return decode_image(data, "any", source=name)
            except ImageReadError as error:
                if "alpha channel" in str(error):  # read_image's hint names options we lack
                    raise ImageReadError(
                        f"{name}: has an alpha channel; save the restored image as RGB or grey"
                    ) from None
                raise
            except Exception as error:  # a decoder bug must not stop the scorer
                raise ImageReadError(
                    f"{name}: cannot read the image ({type(error).__name__}: {error})"
                ) from None
        finally:
            Image.MAX_IMAGE_PIXELS = before


def _score_image(
    folder_fd: int, name: str, clean: torch.Tensor, size: tuple[int, int]
) -> tuple[dict, torch.Tensor | None]:
    limit = min(MAX_FILE_BYTES, BYTES_PER_PIXEL * size[0] * size[1] + (1 << 20))
    try:
        restored = decode_checked(read_file(name, limit, folder_fd), name, size)
    except (UntrustedFileError, ImageReadError) as error:
        return {"error": str(error)}, None
    rgb = grey_to_rgb(restored) if restored.shape[0] == 1 else restored
    try:
        result = {"y_mae": y_mae(restored, clean), "psnr": psnr(rgb, clean)}
    except ValueError as error:  # NaN or infinite values
        return {"error": f"{name}: {error}"}, None
    return {**result, "pixels": size[0] * size[1]}, restored


def score_outputs(folder: str | Path, truth: Truth) -> tuple[dict, dict[str, torch.Tensor]]:
    """:func:`score_folder`, and the restored images it decoded (test name -> (C, H, W) in
    [0, 1]) of the pages it accepted: the grader makes thumbnails from these, never by reading
    the folder again."""
    folder = Path(folder)
    try:
        folder_fd = open_folder(folder)
    except UntrustedFileError as error:
        return _failed("images", METRIC, [f"{error} (expected a folder of restored images)"]), {}
    try:
        return _score_open_folder(folder_fd, truth)
    finally:
        os.close(folder_fd)


def _score_open_folder(folder_fd: int, truth: Truth) -> tuple[dict, dict[str, torch.Tensor]]:
    errors, by_stem = [], {}
    expected = truth.by_stem
    names = []
    with os.scandir(folder_fd) as entries:
        for entry in entries:
            names.append(entry.name)
            if len(names) > len(expected) + 100:
                return _failed("images", METRIC, [f"outputs: over {len(names) - 1} files"]), {}
    for name in sorted(names):
        if name.startswith("."):  # macOS resource files and the like, skipped as everywhere
            continue
        stem = os.path.splitext(name)[0]
        if not is_image_name(name) or stem not in expected:
            errors.append(f"{name}: extra file (not one of the {len(expected)} test images)")
        elif stem in by_stem:
            errors.append(f"{by_stem[stem]} and {name}: two files for one image")
        else:
            by_stem[stem] = name
    images, arrays = {}, {}
    for stem, name in expected.items():
        if stem not in by_stem:
            images[name] = {"error": f"{stem}: missing (no restored image of {name})"}
            continue
        images[name], restored = _score_image(
            folder_fd, by_stem[stem], truth.clean[name], truth.sizes[name]
        )
        if restored is not None:
            arrays[name] = restored
    errors += [result["error"] for result in images.values() if "error" in result]
    if errors:
        return _failed("images", METRIC, errors, images), arrays
    pixels = sum(result.pop("pixels") for result in images.values())
    total = sum(
        result["y_mae"] * truth.sizes[n][0] * truth.sizes[n][1] for n, result in images.items()
    )
    mean_psnr = sum(result["psnr"] for result in images.values()) / len(images)
    return {"format": "images", "metric": METRIC, "status": "ok", "score": total / pixels,
            "psnr": mean_psnr, "images": images, "errors": []}, arrays  # fmt: skip


def score_folder(folder: str | Path, truth: Truth) -> dict:
    """Score a folder of restored images (see module doc). Hidden files (``.name``) are ignored;
    every file is read with :func:`restorelab.competition.untrusted.read_file`."""
    return score_outputs(folder, truth)[0]


def _csv_rows(path: Path) -> tuple[list[list[str]], list[str]]:
    try:
        data = read_file(path, MAX_CSV_BYTES)
    except UntrustedFileError as error:
        return [], [str(error)]
    try:
        text = data.decode("utf-8-sig")
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
        if not PLAIN_DECIMAL.match(text):
            errors.append(
                f"{path.name} line {line}: {text!r} is not a plain decimal number (like 117.25)"
            )
            continue
        value = float(text)
        if name is None:
            errors.append(f"{path.name} line {line}: extra row {file!r} (not a test image)")
        elif name in values:
            errors.append(f"{path.name} line {line}: a second row for {file}")
        elif not 0 <= value <= 255:
            errors.append(f"{path.name} line {line}: the value of {file} is {text}, not in 0..255")
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
