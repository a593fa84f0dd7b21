"""How far each stored QUICK number moves across machines of the project's kind, and the
tolerance the book's checks use for it.

A QUICK number is a short CPU training run (60 to 800 steps): the same code gives another number
on another CPU capability (AVX2 against AVX-512 kernels), with another thread count (CI runs
``nproc / 2`` threads per notebook kernel) or with another seed. This benchmark measures every
stored QUICK number of ``restorelab/comparison.csv`` (chapters 1-4) and
``restorelab/descanning.csv`` (chapters 5, 6 and 9) under

* the descanning table: every combination of capability (AVX2, the CPU's best), threads (1, 2)
  and seed (0, 1, 2), 12 runs of ``python -m restorelab.descanning --setting QUICK``;
* chapters 1-4: the base setting (the CPU's best capability, 1 thread, seed 0: what CI computes
  on a 2-core machine), AVX2, 2 threads, and seeds 1 and 2, each chapter run with papermill.

The stored value of a number is its base run, and its tolerance is 1.5 times the largest distance
of any variant from it (at least 0.01): a seed is the largest change a machine can make to a
chaotic short run, so a tolerance from the seeds holds on CPUs not measured here, and the 1.5
covers a seed not measured. ``--apply`` writes values and tolerances into the two CSVs.
``--claims`` then runs chapters 5-9, whose cells assert the orders and signs their prose states
from QUICK runs, under AVX2 and with 2 threads (chapters 1-4 already ran under every variant).

    python benchmarks/quick_spread.py            # measure (about 25 minutes on 2 cores)
    python benchmarks/quick_spread.py --apply    # store what it measured in the CSVs
    python benchmarks/quick_spread.py --claims   # chapters 5-9 under AVX2 and 2 threads

Results: ``results/quick_spread.{json,md}``. Chapters 1-4 need the benchmarks of
``../shared/datasets`` (Set5, Set14, Set12, Classic5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import torch
from report import RESULTS, machine, save

from restorelab import comparison, descanning

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ("01_srcnn", "02_arcnn", "03_dncnn", "04_srresnet")
CLAIM_CHAPTERS = ("05_kbnet", "06_restormer", "07_esrgan", "08_inpainter", "09_descanning")
BEST = torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512"; ATEN_CPU_CAPABILITY wants lower case
BASE = dict(capability=BEST.lower(), threads=1, seed=0)
MARGIN, FLOOR = 1.5, 0.01
# The rows' measured numbers: comparison rows (PSNR, SSIM), descanning rows (Y-MAE, PSNR)
METRICS = {"comparison": ("psnr", "ssim"), "descanning": ("y_mae", "psnr")}

# Put first in a chapter's copy: record the rows the chapter checks instead of checking them
RECORD = """import restorelab.comparison as _comparison
_RECORDED = []
def _record(live, *args, **kwargs):
    _RECORDED.extend(live)
    return True
_comparison.matches_stored = _record"""


def variants(full_factorial: bool) -> list[dict]:
    """Settings to run: every combination, or the base and one change at a time."""
    capabilities, threads, seeds = (BASE["capability"], "avx2"), (1, 2), (0, 1, 2)
    if full_factorial:
        return [dict(capability=c, threads=t, seed=s)
                for c in capabilities for t in threads for s in seeds]  # fmt: skip
    return [BASE, {**BASE, "capability": "avx2"}, {**BASE, "threads": 2},
            {**BASE, "seed": 1}, {**BASE, "seed": 2}]  # fmt: skip


def _env(variant: dict) -> dict:
    return {**os.environ, "ATEN_CPU_CAPABILITY": variant["capability"],
            "OMP_NUM_THREADS": str(variant["threads"]), "MKL_NUM_THREADS": str(variant["threads"])}  # fmt: skip


def descanning_rows(variant: dict, folder: Path) -> list[dict]:
    """The QUICK descanning table trained under ``variant``."""
    out = folder / f"descanning-{variant['capability']}-{variant['threads']}-{variant['seed']}.json"
    subprocess.run([sys.executable, "-m", "restorelab.descanning", "--setting", "QUICK",
                    "--seed", str(variant["seed"]), "--json", str(out)],
                   env=_env(variant), check=True, cwd=folder)  # fmt: skip
    return json.loads(out.read_text())


def chapter_rows(chapter: str, variant: dict, folder: Path) -> list[dict]:
    """The QUICK rows ``chapter`` checks against comparison.csv, computed under ``variant``."""
    import papermill

    name = f"{chapter}-{variant['capability']}-{variant['threads']}-{variant['seed']}"
    rows_file = folder / f"{name}.json"
    notebook = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RECORD))
    notebook.cells.append(nbformat.v4.new_code_cell(
        f"import json\njson.dump(_RECORDED, open({str(rows_file)!r}, 'w'))"))  # fmt: skip
    source = folder / f"{name}.ipynb"
    nbformat.write(notebook, source)
    saved = os.environ.copy()
    os.environ.update(_env(variant))  # the kernel inherits the environment
    try:
        papermill.execute_notebook(str(source), str(folder / f"{name}-out.ipynb"),
                                   parameters=dict(QUICK=True, SEED=variant["seed"]),
                                   cwd=str(ROOT / "book"), progress_bar=False)  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return json.loads(rows_file.read_text())


def tolerance(values: list[float], base: float) -> float:
    """1.5 x the largest distance of a variant from the base run, rounded up, at least 0.01."""
    distance = max(abs(v - base) for v in values)
    return max(FLOOR, math.ceil(MARGIN * distance * 1000 - 1e-9) / 1000)


def summarise(runs: dict[str, list[tuple[dict, list[dict]]]]) -> dict:
    """Per table, row and metric: the base value, every variant's value, spread and tolerance."""
    summary = {}
    for table, measured in runs.items():
        base_rows = next(rows for variant, rows in measured if variant == BASE)
        for base_row in base_rows:
            key = (table, base_row["model"], base_row.get("benchmark", base_row.get("data")))
            for metric in METRICS[table]:
                if base_row.get(metric) is None:
                    continue
                values = {f"{v['capability']}/{v['threads']}t/seed{v['seed']}": row[metric]
                          for v, rows in measured for row in rows
                          if (row["model"], row.get("benchmark", row.get("data"))) == key[1:]}  # fmt: skip
                summary[" | ".join(map(str, key)) + f" | {metric}"] = dict(
                    table=table, model=key[1], where=key[2], metric=metric, base=base_row[metric],
                    values=values, spread=max(values.values()) - min(values.values()),
                    tolerance=tolerance(list(values.values()), base_row[metric]),
                )  # fmt: skip
    return summary


def apply(summary: dict) -> None:
    """Store each QUICK number's base value and tolerance in comparison.csv / descanning.csv."""
    for table, module in (("comparison", comparison), ("descanning", descanning)):
        entries = {(e["model"], e["where"], e["metric"]): e for e in summary.values()
                   if e["table"] == table}  # fmt: skip
        module.set_quick_numbers(entries)


def measure(jobs: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="quick-spread-"))
    tasks = [("descanning", v, lambda v=v: descanning_rows(v, folder)) for v in variants(True)]
    tasks += [("comparison", v, lambda c=c, v=v: chapter_rows(c, v, folder))
              for c in CHAPTERS for v in variants(False)]  # fmt: skip
    with ThreadPoolExecutor(jobs) as pool:
        futures = [(table, variant, pool.submit(run)) for table, variant, run in tasks]
        runs: dict[str, dict] = {}
        for table, variant, future in futures:
            key = json.dumps(variant, sort_keys=True)
            runs.setdefault(table, {}).setdefault(key, (variant, []))[1].extend(future.result())
    return summarise({table: list(by.values()) for table, by in runs.items()})


def check_claims(jobs: int) -> dict[str, dict[str, str]]:
    """Run chapters 5-9 as CI does but under AVX2 and with 2 threads: their cells assert the
    claims their prose makes from QUICK runs (an order, a sign, a significance). Chapters 1-4
    ran under every variant while :func:`measure` recorded their rows."""
    import papermill

    folder = Path(tempfile.mkdtemp(prefix="quick-claims-"))

    def run(chapter: str, variant: dict) -> str:
        saved = os.environ.copy()
        os.environ.update(_env(variant))
        try:
            papermill.execute_notebook(str(ROOT / "book" / f"{chapter}.ipynb"),
                                       str(folder / f"{chapter}-{variant['capability']}-{variant['threads']}.ipynb"),
                                       parameters=dict(QUICK=True), cwd=str(ROOT / "book"), progress_bar=False)  # fmt: skip
            return "ok"
        except papermill.PapermillExecutionError as error:
            return f"{error.ename}: {error.evalue}"
        finally:
            os.environ.clear()
            os.environ.update(saved)

    chosen = [v for v in variants(False) if v["seed"] == 0 and v != BASE]
    with ThreadPoolExecutor(jobs) as pool:
        futures = {(c, f"{v['capability']}/{v['threads']}t"): pool.submit(run, c, v)
                   for c in CLAIM_CHAPTERS for v in chosen}  # fmt: skip
    claims: dict[str, dict[str, str]] = {}
    for (chapter, variant), future in futures.items():
        claims.setdefault(chapter, {})[variant] = future.result()
    return claims


def render(result: dict) -> list[str]:
    """The Markdown of ``result`` (the numbers, and the claims when they were checked)."""
    lines = [f"QUICK numbers across CPU capability, threads and seeds ({result['machine']}; base: "
             f"{result['base']}); tolerance = max({FLOOR}, {MARGIN} x the largest distance from "
             "the base run). `python benchmarks/quick_spread.py`", "",
             "| table | row | where | metric | base | spread | tolerance | variants |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e in result["numbers"].values():
        shown = ", ".join(f"{k} {v:g}" for k, v in e["values"].items())
        lines.append(f"| {e['table']} | {e['model']} | {e['where']} | {e['metric']} | {e['base']:g} "
                     f"| {e['spread']:.3f} | {e['tolerance']:.3f} | {shown} |")  # fmt: skip
    if result.get("claims"):
        lines += ["", "Chapters 5-9 executed under other settings (their cells assert the claims of "
                  "their prose): `python benchmarks/quick_spread.py --claims`", "",
                  "| chapter | " + " | ".join(next(iter(result["claims"].values()))) + " |",
                  "|---|" + "---|" * len(next(iter(result["claims"].values())))]  # fmt: skip
        for chapter, outcomes in result["claims"].items():
            lines.append(f"| {chapter} | " + " | ".join(outcomes.values()) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apply", action="store_true", help="store results/quick_spread.json's "
                        "values and tolerances in the CSVs (no training)")  # fmt: skip
    parser.add_argument("--claims", action="store_true", help="run chapters 5-9 under AVX2 and "
                        "2 threads (after --apply) and add the outcome to the results")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    args = parser.parse_args()
    stored = RESULTS / "quick_spread.json"
    if args.apply:
        apply(json.loads(stored.read_text())["numbers"])
        return
    if args.claims:
        result = {**json.loads(stored.read_text()), "claims": check_claims(args.jobs)}
    else:
        result = {"machine": machine(), "base": BASE, "numbers": measure(args.jobs)}
    save("quick_spread", result, render(result))


if __name__ == "__main__":
    main()
