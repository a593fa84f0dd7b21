"""The course's running comparison table: every chapter's model beside the paper's numbers.

Started in chapter 1 and extended by each later chapter. The rows live in ``comparison.csv``
next to this file: the papers' own numbers (``setting="paper"``) and what the chapters measured
(``"QUICK"``: the CPU setting CI runs; ``"full"``: the real settings, measured on a GPU). A
chapter passes the numbers it has just measured as ``live`` rows; they replace the stored row
with the same key (chapter, model, benchmark, setting), and :func:`matches_stored` says whether a
QUICK run reproduced the stored numbers (the book's CI checks that it does).

PSNR in dB and SSIM are on the channel the ``metric`` column names (``Y``: BT.601 studio luma,
``grey``, ``RGB``), with each task's conventions (``restorelab.tasks``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

RESULTS_FILE = Path(__file__).with_name("comparison.csv")
COLUMNS = ("chapter", "model", "task", "benchmark", "metric", "params", "setting", "psnr", "ssim")
KEY = ("chapter", "model", "benchmark", "setting")
SETTINGS = ("paper", "full", "QUICK")


def _key(row: dict) -> tuple:
    return tuple(row[name] for name in KEY)


def _clean(row: dict) -> dict:
    missing = [name for name in COLUMNS if name not in row]
    if missing:
        raise ValueError(f"comparison row {row} lacks {missing}")
    if row["setting"] not in SETTINGS:
        raise ValueError(f"setting {row['setting']!r} is not one of {SETTINGS}")

    def number(value, kind):
        return None if value in (None, "") else kind(value)

    return {
        **{name: row[name] for name in COLUMNS},
        "chapter": int(row["chapter"]),
        "params": number(row["params"], int),
        "psnr": number(row["psnr"], float),
        "ssim": number(row["ssim"], float),
    }


def load_results(path: str | Path = RESULTS_FILE) -> list[dict]:
    """Every stored row of ``path`` (a CSV with the :data:`COLUMNS`)."""
    with open(path, newline="") as handle:
        return [_clean(row) for row in csv.DictReader(handle)]


@dataclass
class ComparisonTable:
    """Rows shown as a Markdown table in notebooks (``str`` gives the same Markdown)."""

    rows: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        header = ("ch.", "model", "task", "benchmark", "metric", "params", "setting", "PSNR", "SSIM")  # fmt: skip
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [
                str(row["chapter"]), row["model"], row["task"], row["benchmark"], row["metric"],
                "" if row["params"] is None else f"{row['params']:,}", row["setting"],
                "" if row["psnr"] is None else f"{row['psnr']:.2f}",
                "" if row["ssim"] is None else f"{row['ssim']:.4f}",
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return str(self)


def comparison_table(
    upto_chapter: int, live: list[dict] | None = None, path: str | Path = RESULTS_FILE
) -> ComparisonTable:
    """The rows of chapters ``<= upto_chapter``, with ``live`` rows replacing stored ones.

    Sorted by chapter, then benchmark and model in the order they first appear, then paper
    before full before QUICK.
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


def matches_stored(
    live: list[dict], path: str | Path = RESULTS_FILE, tolerance_db: float = 0.05
) -> bool:
    """True when every live QUICK row has a stored twin within ``tolerance_db`` (and 0.002 SSIM).

    A False means the chapter's QUICK run no longer reproduces ``comparison.csv``: either the
    code changed what it computes, or the CSV needs the new numbers.
    """
    stored = {_key(row): row for row in load_results(path)}
    for row in map(_clean, live):
        twin = stored.get(_key(row))
        if twin is None:
            print(f"no stored row for {_key(row)}")
            return False
        for name, tolerance in (("psnr", tolerance_db), ("ssim", 0.002)):
            if row[name] is not None and abs(row[name] - (twin[name] or 0.0)) > tolerance:
                print(f"{row['model']} on {row['benchmark']}: {name} {row[name]:.4f} now, "
                      f"{twin[name]} stored")  # fmt: skip
                return False
    return True
