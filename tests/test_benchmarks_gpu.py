"""The helpers of issue 18's GPU check (benchmarks/gpu_check.py, benchmarks/basicsr_peer.py):
the GPU-busy share, the step marks of a timed fit, the targets table and BasicSR's sub-image
grid. Speed itself is measured in benchmarks/, never asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import basicsr_peer  # noqa: E402
import gpu_check  # noqa: E402


def test_busy_share_counts_overlapping_kernels_once():
    # two streams overlapping on 2..4, a nested kernel, a gap 6..8, unsorted input
    intervals = [(8.0, 10.0), (0.0, 4.0), (2.0, 6.0), (1.0, 3.0)]
    assert gpu_check.busy_share(intervals, 20.0) == pytest.approx(8.0 / 20.0)
    assert gpu_check.busy_share([], 5.0) == 0.0


def test_before_steps_runs_each_action_once_before_its_step():
    trainer = gpu_check._trainer("srcnn", True, 4, amp="off", sampler="device")
    seen: list[tuple[str, int]] = []
    gpu_check._before_steps(trainer, {1: lambda: seen.append(("a", trainer.step)),
                                      3: lambda: seen.append(("b", trainer.step))})  # fmt: skip
    trainer.fit()
    assert seen == [("a", 1), ("b", 3)]
    assert trainer.step == 4


def test_timed_fit_refuses_a_trainer_of_other_length():
    trainer = gpu_check._trainer("srcnn", True, 5, amp="off")
    with pytest.raises(ValueError, match="5 steps, not 1\\+2\\+1"):
        gpu_check.timed_fit(trainer, 1, 2, 1)


def _row(model: str, setting: str, pps: float, busy: float | None = 0.9) -> dict:
    return {"model": model, "setting": setting, "status": "ok", "patches_per_second": pps,
            "batch_size": 32, "gpu_busy": busy}  # fmt: skip


def test_targets_compare_fast_preset_with_old_numbers_and_best_with_eager():
    old = gpu_check.OLD_PATCHES_PER_SECOND["srcnn"]
    rows = [_row("srcnn", gpu_check.EAGER, 5000.0), _row("srcnn", "compile default", 8000.0),
            _row("srcnn", gpu_check.FAST, 10 * old - 1, busy=0.86)]  # fmt: skip
    goals = {g["goal"].split(" (")[0]: g for g in gpu_check.targets(rows, dry=False)
             if g["model"] == "srcnn"}  # fmt: skip
    speed = goals["fast preset patches/s over the old fp32 eager"]
    assert speed["measured"] == pytest.approx((10 * old - 1) / old) and speed["reached"] is False
    assert goals["GPU busy under the fast preset"]["reached"] is True
    best = next(g for g in gpu_check.targets(rows, False) if g["goal"].startswith("best setting"))
    assert "(fast preset)" in best["goal"] and best["reached"] is True
    assert best["measured"] == pytest.approx((10 * old - 1) / 5000.0)
    # a model with nothing measured: every target not evaluated, with the reason
    kbnet = [g for g in gpu_check.targets(rows, False) if g["model"] == "kbnet"]
    assert all(g["reached"] is None and g["note"] for g in kbnet)
    # a fast preset whose profile recorded no kernels: its busy target is not evaluated
    unprofiled = {**_row("dncnn", gpu_check.FAST, 1.0, busy=None), "profile_note": "no kernels"}
    busy = gpu_check.targets([unprofiled], False)[4]
    assert busy["goal"].startswith("GPU busy") and busy["model"] == "dncnn"
    assert busy["reached"] is None and busy["note"] == "no kernels"


def test_targets_of_a_dry_run_leave_the_gpu_goals_unevaluated():
    rows = [_row("kbnet", gpu_check.EAGER, 10.0, None), _row("kbnet", gpu_check.FAST, 12.0, None)]
    goals = [g for g in gpu_check.targets(rows, dry=True) if g["model"] == "kbnet"]
    assert [g["reached"] for g in goals] == [None, None, False]  # 1.2x < 1.3x
    assert goals[0]["measured"] is None and "H100" in goals[0]["note"]


def test_markdown_prints_each_target_and_whether_reached():
    rows = [{**_row("srcnn", name, 100.0 * (i + 1)), "steps_per_second": 1.0,
             "peak_memory_mib": None, "warmup_seconds": 0.1, "fields": {"amp": "off"}}
            for i, name in enumerate(gpu_check.SETTINGS)]  # fmt: skip
    report = {"device": "test", "torch": "x", "seconds": 1.0, "budget": 1.0, "smoke": [],
              "dry_run": False, "throughput": rows, "targets": gpu_check.targets(rows, False)}  # fmt: skip
    text = gpu_check.markdown(report)
    assert text.count("| srcnn | ") == len(gpu_check.SETTINGS) + 3
    assert "| >= 85% | yes |" in text and "| >= 10.00x | **no** |" in text
    assert "not evaluated (fast preset not measured)" in text  # the other models


def test_sub_images_cover_each_side_flush_with_the_border():
    assert basicsr_peer._starts(480) == [0]
    assert basicsr_peer._starts(512) == [0, 32]
    assert basicsr_peer._starts(1411) == [0, 240, 480, 720, 931]
