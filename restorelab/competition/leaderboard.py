"""The leaderboard of a graded class: CSV, Markdown and a self-contained HTML page.

Taught in the course appendix ("Running the competition"). Built from every
``results/teams/TEAM.json`` (written by :mod:`restorelab.competition.grade`), so grading one
team again changes its row only. Teams that passed are ranked by Y-MAE (lower is better; equal
scores share a rank); failed teams follow, unranked, with the reason.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from pathlib import Path

from restorelab.competition.make import METRIC

COLUMNS = ("rank", "team", "status", "y_mae", "psnr", "parameters", "seconds", "reason")


MARKDOWN_SPECIAL = "\\|*_`<>[]"  # backslash first: escaping must not be escaped again
NUMBER_FIELDS = ("score", "psnr", "seconds")
TEXT_FIELDS = ("team", "status", "reason")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet cell a formula


def _number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _load(path: Path) -> dict:
    """One team's report, its fields checked; raises ValueError naming ``path``."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable team report ({error})") from None
    if not isinstance(report, dict):
        raise ValueError(f"{path}: a team report must be a JSON object")
    for field in TEXT_FIELDS:
        if not isinstance(report.get(field), str):
            raise ValueError(f"{path}: {field} must be a string, got {report.get(field)!r}")
    for field in NUMBER_FIELDS:
        if not _number(report.get(field)):
            raise ValueError(f"{path}: {field} must be a number or null, got {report[field]!r}")
    parameters = report.get("parameters")
    if parameters is not None and (not isinstance(parameters, int) or isinstance(parameters, bool)):
        raise ValueError(f"{path}: parameters must be an integer or null, got {parameters!r}")
    if report["status"] == "ok" and report["score"] is None:
        raise ValueError(f"{path}: status ok without a score")
    return report


def rows(results: str | Path) -> list[dict]:
    """The teams' reports in leaderboard order, each with its ``rank`` (None when failed).
    Raises ValueError naming the file of a report that is not one."""
    reports = [_load(p) for p in sorted(Path(results).glob("teams/*.json"))]
    if not reports:
        raise FileNotFoundError(f"{Path(results) / 'teams'}: no graded teams")
    passed = sorted(
        (r for r in reports if r["status"] == "ok"), key=lambda r: (r["score"], r["team"])
    )
    failed = sorted((r for r in reports if r["status"] != "ok"), key=lambda r: r["team"])
    for index, report in enumerate(passed):
        tied = index and report["score"] == passed[index - 1]["score"]
        report["rank"] = passed[index - 1]["rank"] if tied else index + 1
    for report in failed:
        report["rank"] = None
    return passed + failed


def markdown_cell(text: str) -> str:
    """``text`` as one Markdown table cell: on one line, ``\\ | * _ ` < > [ ]`` escaped."""
    text = " ".join(text.split())
    return "".join("\\" + char if char in MARKDOWN_SPECIAL else char for char in text)


def _cells(report: dict) -> dict[str, str]:
    def number(value, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return {
        "rank": "" if report["rank"] is None else str(report["rank"]),
        "team": report["team"],
        "status": report["status"],
        "y_mae": number(report["score"], 4),
        "psnr": number(report["psnr"], 2),
        "parameters": "" if report["parameters"] is None else str(report["parameters"]),
        "seconds": number(report["seconds"], 1),
        "reason": report["reason"],
    }


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def to_csv(table: list[dict]) -> str:
    """The leaderboard as CSV; a text cell that a spreadsheet would take for a formula (``=``,
    ``+``, ``-``, ``@`` first) starts with ``'``, so it shows as text and runs nothing."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in table:
        cells = _cells(report)
        for column in TEXT_FIELDS:
            if cells[column].startswith(FORMULA_STARTS):
                cells[column] = "'" + cells[column]
        writer.writerow(cells)
    return out.getvalue()


def to_markdown(table: list[dict]) -> str:
    lines = [f"Score: {METRIC}; PSNR on 8-bit RGB.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]  # fmt: skip
    for report in table:
        cells = _cells(report)
        lines.append("| " + " | ".join(markdown_cell(cells[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _thumbnail_tag(results: Path, report: dict) -> str:
    name = report.get("thumbnail")
    path = results / "thumbs" / f"{report['team']}.png" if name else None
    if path is None or not path.is_file():
        return "&mdash;"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="scan and restored crop of {html.escape(report["team"])}" src="data:image/png;base64,{data}">'


def to_html(table: list[dict], results: Path) -> str:
    head = "".join(f"<th>{c}</th>" for c in (*COLUMNS[:-1], "before / after", "reason"))
    body = []
    for report in table:
        cells = _cells(report)
        tds = "".join(f"<td>{html.escape(cells[c])}</td>" for c in COLUMNS[:-1])
        thumb = _thumbnail_tag(results, report)
        body.append(f'<tr class="{html.escape(report["status"])}">{tds}<td>{thumb}</td>'
                    f"<td>{html.escape(cells['reason'])}</td></tr>")  # fmt: skip
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:middle}"
             "tr.failed{background:#fdecea}td:last-child{max-width:40em}")  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Leaderboard</title>'
        f"<style>{style}</style></head><body><h1>Leaderboard</h1>"
        f"<p>Score: {html.escape(METRIC)} (lower is better); PSNR on 8-bit RGB. Thumbnails: the "
        "centre of the first test scan, before and after.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )


def write(results: str | Path) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``.md`` and ``.html`` in ``results``; returns their paths."""
    results = Path(results)
    table = rows(results)
    paths = {kind: results / f"leaderboard.{kind}" for kind in ("csv", "md", "html")}
    _atomic(paths["csv"], to_csv(table))
    _atomic(paths["md"], to_markdown(table))
    _atomic(paths["html"], to_html(table, results))
    return paths
