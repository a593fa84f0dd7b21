"""Stored QUICK numbers hold on any CPU of the project's kind: each has a tolerance measured by
``benchmarks/quick_spread.py`` (CPU capability, threads, seeds), and the QUICK descanning table,
trained again under the AVX2 kernels and under this CPU's best, stays within it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restorelab import comparison, descanning

SPREAD = Path(__file__).parent.parent / "benchmarks" / "results" / "quick_spread.json"


def _quick_numbers() -> list[tuple[str, dict, str]]:
    """(table, stored row, metric) of every stored QUICK number."""
    numbers = [("comparison", row, metric) for row in comparison.load_results()
               if row["setting"] == "QUICK" for metric in ("psnr", "ssim") if row[metric] is not None]  # fmt: skip
    numbers += [("descanning", row, metric) for row in descanning.load_table()
                if row["setting"] == "QUICK" for metric in ("y_mae", "psnr")]  # fmt: skip
    return numbers


def test_every_stored_quick_number_has_the_tolerance_its_measured_spread_gives():
    measured = {(e["table"], e["model"], e["where"], e["metric"]): e
                for e in json.loads(SPREAD.read_text())["numbers"].values()}  # fmt: skip
    for table, row, metric in _quick_numbers():
        where = row["benchmark"] if table == "comparison" else row["data"]
        entry = measured.get((table, row["model"], where, metric))
        assert entry is not None, f"{table}: {row['model']} {metric} was not measured"
        assert row[metric] == pytest.approx(entry["base"], abs=0.5 * 10 ** -comparison.DIGITS[metric])
        tolerance = row[f"{metric}_tol"]
        assert tolerance == pytest.approx(entry["tolerance"]), (row["model"], metric)
        for variant, value in entry["values"].items():  # every measured machine passes
            assert abs(value - row[metric]) <= tolerance, (row["model"], metric, variant, value)


def test_a_number_outside_its_tolerance_or_without_one_fails_and_says_which(tmp_path, capsys):
    path = tmp_path / "descanning.csv"
    row = next(r for r in descanning.load_table() if r["model"] == "DnCNN" and r["setting"] == "QUICK")
    descanning.store_rows([row], path)
    tolerance = row["y_mae_tol"]
    assert descanning.matches_stored([row | {"y_mae": row["y_mae"] + 0.9 * tolerance}], path)
    assert not descanning.matches_stored([row | {"y_mae": row["y_mae"] - 1.1 * tolerance}], path)
    assert "DnCNN: y_mae" in capsys.readouterr().out
    descanning.store_rows([row | {"y_mae_tol": None}], path)  # keeps the stored tolerance
    assert descanning.load_table(path)[0]["y_mae_tol"] == tolerance
    path.write_text(path.read_text().replace(f",{tolerance},", ",,"))
    assert not descanning.matches_stored([row], path)
    assert "no y_mae tolerance" in capsys.readouterr().out


CAPABILITIES = sorted({"avx2", torch.backends.cpu.get_cpu_capability().lower()})


@pytest.mark.slow
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_the_quick_descanning_table_holds_under_each_cpu_capability(capability, tmp_path):
    if capability == "avx2" and "AVX" not in torch.backends.cpu.get_cpu_capability():
        pytest.skip("this CPU has no AVX2 kernels")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "restorelab.descanning", "--setting", "QUICK", "--check"],
                         env=env, cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, f"{capability}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
