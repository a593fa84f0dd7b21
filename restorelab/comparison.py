"""The course's running comparison table: every chapter's model beside the paper's numbers.

Started in chapter 1 and extended by each later chapter. The rows live in ``comparison.csv``
next to this file: the papers' own numbers (``setting="paper"``) and what the chapters measured
(``"QUICK"``: the CPU setting CI runs; ``"full"``: the real settings, measured on a GPU). A
chapter passes the numbers it has just measured as ``live`` rows; they replace the stored row
with the same key (chapter, model, benchmark, setting), and :func:`matches_stored` says whether a
QUICK run reproduced the stored numbers (the book's CI checks that it does) within each number's
stored tolerance (``psnr_tol``, ``ssim_tol``): how far a short CPU run moves with the CPU's
vector capability, the thread count and the seed, measured by ``benchmarks/quick_spread.py``.

PSNR in dB and SSIM are on the channel the ``metric`` column names (``Y``: BT.601 studio luma,
``grey``, ``RGB``). The ``convention`` column says how a row's numbers were computed (one of
:data:`CONVENTIONS`): ``restorelab`` for every row measured here (``restorelab.tasks``), the
source table for a paper's row. Papers computed SSIM in different ways (another implementation,
MATLAB's ``ssim.m`` with its downsampling, another luma), so an SSIM of one convention is only
compared with SSIMs of the same convention: a gap between conventions is not a result.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS_FILE = Path(__file__).with_name("comparison.csv")
COLUMNS = ("chapter", "model", "task", "benchmark", "metric", "params", "setting", "psnr", "ssim",
           "convention")  # fmt: skip
KEY = ("chapter", "model", "benchmark", "setting", "convention")
# A QUICK number's tolerance, column "<metric>_tol": stored after the COLUMNS, empty elsewhere
TOLERANCES = ("psnr_tol", "ssim_tol")
DIGITS = {"psnr": 2, "ssim": 4, "y_mae": 3}  # how the tables store each metric
# "reference": the checkpoints of restorelab.pretrained, trained far longer than QUICK
SETTINGS = ("paper", "reference", "full", "QUICK")
OURS = "restorelab"
# How each convention computed PSNR and SSIM, and whether its SSIM can stand beside ours. Our
# numbers for the baselines were measured with restorelab.metrics on the shipped benchmarks.
CONVENTIONS = {
    OURS: "measured here with restorelab.metrics: outputs rounded to 8 bits; SSIM with an 11x11 "
    "Gaussian window (sigma 1.5) on the full-resolution image, no downsampling; SR on the Y "
    "channel with `scale` pixels shaved.",
    "SRCNN paper": "Dong et al. (TPAMI 2016), Tables 2-3: Y channel, border shaved. Our bicubic "
    "reproduces its bicubic rows (Set5 x2 33.68 dB / 0.9304 against 33.66 / 0.9299; x4 28.43 / "
    "0.8113 against 28.42 / 0.8104), so its SSIM is ours to within 0.001. MATLAB's ssim.m with "
    "its automatic downsampling would give 0.9377 and 0.8245: not what it used.",
    "SRGAN paper (Daala)": "Ledig et al. (CVPR 2017), Table 2, measured with the Daala tools on "
    "the Y channel, 4 pixels shaved. Its PSNR agrees with ours (bicubic on Set5 x4: 28.43 dB, "
    "ours 28.43), its SSIM does not: its bicubic reads 0.8211 on Set5 and 0.7486 on Set14, "
    "ours 0.8113 and 0.7050. Compare its SSIM only with its own bicubic.",
    "ESRGAN paper": "Wang et al. (ECCV workshops 2018), the table of PSNR-oriented models: its "
    "RRDB trained with L1 only (RRDB_PSNR), Y channel, 4 pixels shaved, computed with BasicSR's "
    "MATLAB-like code. The paper gives no PSNR table for its GAN model (ESRGAN is judged by "
    "perceptual index and user study): this table has no ESRGAN row for that reason.",
    "DnCNN paper": "Zhang et al. (TIP 2017), the table of JPEG deblocking (the KAIR convention, "
    "also SwinIR's Table 4): grey, 8-bit. Its JPEG-input row on Classic5 q10 is exactly ours "
    "(27.82 dB / 0.7595), so its SSIM is ours. Its denoising tables give PSNR only.",
    "KBNet paper": "Zhang et al. (arXiv 2023), the table of colour Gaussian denoising: RGB "
    "PSNR on CBSD68 (its code builds on Restormer's and evaluates the same way); PSNR only.",
    "Restormer paper": "Zamir et al. (CVPR 2022), Table 5 (colour Gaussian denoising, one model "
    "per noise level): RGB PSNR on CBSD68, noise added to the float image with a fixed seed; "
    "PSNR only.",
    "AR-CNN paper": "Dong et al. (ICCV 2015), LIVE1 table (LIVE1 is not shipped: not "
    "re-measured here). For AR-CNN at q10 it reads 28.98 dB / 0.8217, the DnCNN paper's "
    "convention (SwinIR, Table 4) gives the same model 28.96 dB / 0.8076: PSNR agrees, SSIM does "
    "not. Its SSIM column, the JPEG input's 0.7905 included, is another convention: compare it "
    "only within this table.",
}


# reference checkpoint -> (chapter, model, task) of its rows; the benchmarks come from its card
REFERENCE_ROWS = {
    "srcnn-x2": (1, "SRCNN 9-5-5", "SR x2"),
    "arcnn-q10": (2, "AR-CNN", "JPEG q10"),
    "dncnn-s25": (3, "DnCNN-S", "Gaussian σ25"),
    "msrresnet-x4": (4, "MSRResNet, L1", "SR x4"),
}


def reference_rows() -> list[dict]:
    """One ``"reference"`` row per checkpoint and benchmark, the numbers read from its model card.

    PSNR rounded to 0.01 dB and SSIM to 0.0001, as stored; ``metric`` is ``Y`` where the card
    scores the Y channel (``psnr_y``), else ``grey``.
    """
    from restorelab import pretrained

    rows = []
    for name, (chapter, model, task) in REFERENCE_ROWS.items():
        card = pretrained.info(name)
        for benchmark, scores in card["evaluation"].items():
            y = "psnr_y" in scores["model"]
            psnr, ssim = (scores["model"][k + ("_y" if y else "")] for k in ("psnr", "ssim"))
            rows.append(dict(chapter=chapter, model=model, task=task, benchmark=benchmark,
                             metric="Y" if y else "grey", params=card["parameters"],
                             setting="reference", psnr=round(psnr, 2), ssim=round(ssim, 4),
                             convention=OURS))  # fmt: skip
    return rows


def write_reference_rows(path: str | Path = RESULTS_FILE) -> None:
    """Replace the ``"reference"`` rows of ``path`` by :func:`reference_rows` (atomically)."""
    with open(path, newline="") as handle:
        kept = [row for row in csv.DictReader(handle) if row["setting"] != "reference"]
    new = [{**row, "psnr": f"{row['psnr']:.2f}", "ssim": f"{row['ssim']:.4f}"}
           for row in reference_rows()]  # fmt: skip
    _write(kept + new, Path(path))


def _key(row: dict) -> tuple:
    return tuple(row[name] for name in KEY)


def _clean(row: dict) -> dict:
    """A row with typed numbers; rows measured here (not ``paper``) default to :data:`OURS`."""
    if not row.get("convention") and row.get("setting") != "paper":
        row = {**row, "convention": OURS}
    missing = [name for name in COLUMNS if name not in row]
    if missing:
        raise ValueError(f"comparison row {row} lacks {missing}")
    if row["setting"] not in SETTINGS:
        raise ValueError(f"setting {row['setting']!r} is not one of {SETTINGS}")
    if row["convention"] not in CONVENTIONS:
        raise ValueError(
            f"convention {row['convention']!r} of {row['model']} is not one of {list(CONVENTIONS)}"
        )

    def number(value, kind):
        return None if value in (None, "") else kind(value)

    return {
        **{name: row[name] for name in COLUMNS},
        "chapter": int(row["chapter"]),
        "params": number(row["params"], int),
        "psnr": number(row["psnr"], float),
        "ssim": number(row["ssim"], float),
        **{name: number(row.get(name), float) for name in TOLERANCES},
    }


def load_results(path: str | Path = RESULTS_FILE) -> list[dict]:
    """Every stored row of ``path`` (a CSV with the :data:`COLUMNS`)."""
    with open(path, newline="") as handle:
        return [_clean(row) for row in csv.DictReader(handle)]


@dataclass
class ComparisonTable:
    """Rows shown as a Markdown table in notebooks (``str`` gives the same Markdown)."""

    rows: list[dict] = field(default_factory=list)

    def notes(self) -> dict[str, str]:
        """How each convention of the shown rows computed its numbers (from :data:`CONVENTIONS`)."""
        used = {row["convention"] for row in self.rows}
        return {name: text for name, text in CONVENTIONS.items() if name in used}

    def __str__(self) -> str:
        header = ("ch.", "model", "task", "benchmark", "metric", "params", "setting", "PSNR", "SSIM",
                  "convention")  # fmt: skip
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [
                str(row["chapter"]), row["model"], row["task"], row["benchmark"], row["metric"],
                "" if row["params"] is None else f"{row['params']:,}", row["setting"],
                "" if row["psnr"] is None else f"{row['psnr']:.2f}",
                "" if row["ssim"] is None else f"{row['ssim']:.4f}", row["convention"],
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("\nSSIMs of different conventions are not comparable. Conventions:\n")
        lines += [f"- **{name}**: {text}" for name, text in self.notes().items()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return str(self)


def comparison_table(
    upto_chapter: int, live: list[dict] | None = None, path: str | Path = RESULTS_FILE
) -> ComparisonTable:
    """The rows of chapters ``<= upto_chapter``, with ``live`` rows replacing stored ones.

    Sorted by chapter, then benchmark and model in the order they first appear, then paper
    before reference before full before QUICK.
    """
    rows = {_key(row): row for row in load_results(path)}
    for row in live or []:
        row = _clean(row)
        rows[_key(row)] = row
    chosen = [row for row in rows.values() if row["chapter"] <= upto_chapter]
    first = {}  # benchmarks and models keep the order in which they first appear
    for row in chosen:
        first.setdefault(("benchmark", row["benchmark"]), len(first))
        first.setdefault(("model", row["model"]), len(first))
    chosen.sort(
        key=lambda r: (
            r["chapter"], first["benchmark", r["benchmark"]], first["model", r["model"]],
            SETTINGS.index(r["setting"]),
        )
    )  # fmt: skip
    return ComparisonTable(chosen)


def within_tolerance(
    live: Sequence[dict], stored: Sequence[dict], key: Sequence[str], metrics: Sequence[str]
) -> bool:
    """True when every ``live`` row has a ``stored`` twin (equal ``key`` columns) and each of its
    ``metrics`` is within the twin's tolerance (column ``<metric>_tol``); prints every miss.

    Shared by this table and :mod:`restorelab.descanning`'s.
    """
    twins = {tuple(row[k] for k in key): row for row in stored}
    ok = True
    for row in live:
        twin = twins.get(tuple(row[k] for k in key))
        if twin is None:
            print(f"no stored row for {tuple(row[k] for k in key)}")
            ok = False
            continue
        for name in metrics:
            tolerance = twin.get(f"{name}_tol")
            if row.get(name) is None:
                continue
            if tolerance is None:
                print(f"{row['model']}: the stored row has no {name} tolerance "
                      "(measure it: python benchmarks/quick_spread.py)")  # fmt: skip
                ok = False
            elif abs(row[name] - (twin[name] or 0.0)) > tolerance:
                print(f"{row['model']}: {name} {row[name]:.4f} now, {twin[name]} stored, "
                      f"tolerance {tolerance}")  # fmt: skip
                ok = False
    return ok


def matches_stored(live: list[dict], path: str | Path = RESULTS_FILE) -> bool:
    """True when every live QUICK row has a stored twin within its tolerance (PSNR and SSIM).

    A False means the chapter's QUICK run no longer reproduces ``comparison.csv``: either the
    code changed what it computes, or the CSV needs the new numbers
    (``benchmarks/quick_spread.py`` measures them and their tolerances).
    """
    return within_tolerance(
        [_clean(row) for row in live], load_results(path), KEY, ("psnr", "ssim")
    )


def with_quick_numbers(rows: list[dict], numbers: dict, where: str) -> list[dict]:
    """``rows`` with each QUICK number replaced: ``numbers[(model, row[where], metric)]`` holds
    its ``base`` value (rounded as the table stores it) and ``tolerance``."""
    updated = []
    for row in rows:
        row = dict(row)
        for metric in DIGITS:
            entry = numbers.get((row["model"], row.get(where), metric))
            if row.get("setting") == "QUICK" and entry is not None:
                row[metric] = f"{entry['base']:.{DIGITS[metric]}f}"
                row[f"{metric}_tol"] = f"{entry['tolerance']:.3f}"
        updated.append(row)
    return updated


def _write(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS + TOLERANCES, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def set_quick_numbers(numbers: dict, path: str | Path = RESULTS_FILE) -> None:
    """Store measured QUICK values and tolerances (see :func:`with_quick_numbers`), atomically."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    _write(with_quick_numbers(rows, numbers, "benchmark"), Path(path))


def paired_difference(name: str, differences: Sequence[float]) -> str:
    """One line judging ``name``'s per-seed differences from a baseline trained with the same
    seeds (chapter 8 and lab 8: a paired comparison cancels what the seed does to both runs).

    It gives every difference, their mean and its 95% Student-t interval, and calls the
    difference clear of the seed noise only when the interval excludes 0 and every seed agrees
    on the sign."""
    from scipy import stats

    diffs = np.asarray(differences, dtype=float)
    seeds = ", ".join(f"{d:+.3f}" for d in diffs)
    if len(diffs) < 2:
        return f"{name}: {seeds} dB from one seed: no interval, train more seeds to judge it"
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    same_sign = bool((diffs > 0).all() or (diffs < 0).all())
    clear = abs(diffs.mean()) > half and same_sign
    return (
        f"{name}: {seeds} dB seed by seed; mean {diffs.mean():+.3f} dB, 95% interval "
        f"[{diffs.mean() - half:+.3f}, {diffs.mean() + half:+.3f}] over {len(diffs)} paired "
        f"seeds, {'the same' if same_sign else 'not the same'} sign for every seed: "
        f"{'clear of the seed noise' if clear else 'within the seed noise'}"
    )
