"""First GPU check: every CUDA path of the Trainer once, then its throughput per model.

Run on a CUDA machine from the repository root (about 4 minutes; restorelab need not be
installed): ``bash benchmarks/gpu.sh [OUT_DIR]``, or ``PYTHONPATH=. python3
benchmarks/gpu_check.py --out OUT_DIR``. Without CUDA (or with ``--cpu-dry-run``) it runs the
same code on the CPU with tiny settings and skips the CUDA-only paths, printing why.

1. Smoke tests, each reported ok / failed (with the error) / skipped (with the reason): AMP bf16
   (the network really runs in bf16), AMP fp16 with the gradient scaler, channels_last,
   torch.compile (first loss as eager's), the side-stream prefetch (batches arrive intact on
   the device), and ``python3 -m torch.distributed.run --nproc_per_node=1 -m restorelab train``
   (NCCL on CUDA, gloo on CPU).
2. Trainer throughput (steps/s, patches/s) and peak memory per model (SRCNN, DnCNN, MSRResNet,
   Restormer and KBNet competition presets) for each option against fp32 eager. Each model runs
   in its own process (memory peaks do not mix) with a share of the time budget; a setting that
   does not finish in it (a slow torch.compile) is reported as skipped.

Writes ``OUT_DIR/gpu_check.{json,md}`` (``gpu_check_dry_run.*`` on the CPU), naming the device.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # restorelab from this checkout, installed or not

from report import save  # noqa: E402 (this folder, on sys.path when run as a script)

from restorelab import models  # noqa: E402
from restorelab.data import Prefetcher, RandomPatches, embedded_photos  # noqa: E402
from restorelab.experiment import make_task  # noqa: E402
from restorelab.train import TrainConfig, Trainer  # noqa: E402

# model, preset, task settings, patch size, batch size (on CUDA)
MODELS = {
    "srcnn": ("paper", {"name": "sr", "scale": 2}, 48, 32),
    "dncnn": ("paper", {"name": "denoise", "sigma": 25}, 48, 32),
    "msrresnet": ("paper", {"name": "sr", "scale": 4, "channels": "rgb", "pre_upsample": False}, 96, 16),
    "restormer": ("competition", {"name": "denoise", "sigma": 25, "channels": "rgb"}, 64, 8),
    "kbnet": ("competition", {"name": "denoise", "sigma": 25, "channels": "rgb"}, 64, 8),
}  # fmt: skip
SETTINGS = {
    "fp32 eager": {"amp": "off"},
    "bf16": {"amp": "bf16"},
    "fp16 + scaler": {"amp": "fp16"},
    "channels_last": {"amp": "off", "channels_last": True},
    "compile": {"amp": "off", "compile": True},
    "bf16 + channels_last + compile": {"amp": "bf16", "channels_last": True, "compile": True},
}
CUDA_ONLY = {"fp16 + scaler", "compile", "bf16 + channels_last + compile"}


def _trainer(model: str, dry: bool, steps: int, **setting) -> Trainer:
    preset, task_settings, patch, batch = MODELS[model]
    task = make_task(**task_settings)
    net = models.build(model, preset, in_channels=task.model_channels,
                       out_channels=task.model_channels)  # fmt: skip
    config = TrainConfig(steps=steps, batch_size=2 if dry else batch, lr=1e-4, progress=False,
                         tensorboard=False, device="cpu" if dry else "cuda", **setting)  # fmt: skip
    patches = RandomPatches(embedded_photos("train"), 32 if dry else patch)
    return Trainer(net, patches, F.l1_loss, config, task.make_pair)


# ------------------------------------------------------------------ smoke tests
def _dtype_seen(trainer: Trainer) -> list[torch.dtype]:
    """Record the dtype of the first convolution's output during training."""
    seen: list[torch.dtype] = []
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


def _losses(history: list[dict]) -> list[float]:
    losses = [row["loss"] for row in history if row["kind"] == "train"]
    assert losses and all(math.isfinite(x) for x in losses), f"losses {losses}"
    return losses


def smoke_amp(dtype: str, dry: bool) -> str:
    trainer = _trainer("srcnn", dry, 6, amp=dtype, log_every=1)
    seen = _dtype_seen(trainer)
    losses = _losses(trainer.fit())
    want = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    assert seen[0] == want, f"the convolution ran in {seen[0]}, not {want}"
    scale = f", scaler scale {trainer.scaler.get_scale():g}" if trainer.scaler.is_enabled() else ""
    assert (dtype == "fp16") == trainer.scaler.is_enabled(), "scaler on for fp16 only"
    return f"convolution output {seen[0]}, losses {losses[0]:.4f} -> {losses[-1]:.4f}{scale}"


def smoke_channels_last(dry: bool) -> str:
    trainer = _trainer("dncnn", dry, 4, amp="off", channels_last=True, log_every=1)
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last), "weights not NHWC"
    losses = _losses(trainer.fit())
    return f"weights channels_last, losses {losses[0]:.4f} -> {losses[-1]:.4f}"


def smoke_compile(dry: bool) -> str:
    first = []
    for compiled in (False, True):
        torch.manual_seed(0)
        trainer = _trainer("srcnn", dry, 3, amp="off", compile=compiled, log_every=1)
        started = time.perf_counter()
        first.append(_losses(trainer.fit())[0])
    seconds = time.perf_counter() - started
    assert abs(first[1] - first[0]) <= 1e-3 * abs(first[0]), f"first losses {first}"
    return f"first loss {first[1]:.6f} (eager {first[0]:.6f}); 3 steps with compilation {seconds:.1f} s"


def smoke_prefetch(dry: bool) -> str:
    device = "cpu" if dry else "cuda"
    batches = [(torch.rand(8, 3, 64, 64), torch.full((8,), i)) for i in range(6)]
    arrived = list(Prefetcher(batches, device, depth=2))
    assert len(arrived) == len(batches)
    for (x, i), (y, j) in zip(batches, arrived, strict=True):
        assert y.device.type == device and torch.equal(x, y.cpu()) and torch.equal(i, j.cpu())
    return f"{len(batches)} batches arrived intact on {device}"


def smoke_torchrun(dry: bool, out: Path) -> str:
    run_dir = out / "torchrun_run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "-m", "restorelab", "train", "--steps", "20", "--val-every", "10", "--batch-size",
               "8", "--patch-size", "32", "--device", "cpu" if dry else "cuda", "--out",
               str(run_dir), "--overwrite"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env=_environment())  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"
    backend = "gloo" if dry else "nccl"
    assert f"rank(s), {backend}" in done.stderr, f"no {backend} in: {done.stderr[-800:]}"
    return f"{backend}, 1 rank: {done.stdout.strip().splitlines()[-1]}"


def _environment() -> dict[str, str]:
    import os

    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def smoke_tests(dry: bool, out: Path) -> list[dict]:
    checks: list[tuple[str, bool, Callable[[], str]]] = [
        ("AMP bf16", False, lambda: smoke_amp("bf16", dry)),
        ("AMP fp16 + GradScaler", True, lambda: smoke_amp("fp16", dry)),
        ("channels_last", False, lambda: smoke_channels_last(dry)),
        ("torch.compile", True, lambda: smoke_compile(dry)),
        ("side-stream prefetch", True, lambda: smoke_prefetch(dry)),
        ("torchrun --nproc_per_node=1", False, lambda: smoke_torchrun(dry, out)),
    ]
    rows = []
    for name, cuda_only, check in checks:
        started = time.perf_counter()
        if dry and cuda_only:
            row = {
                "status": "skipped",
                "detail": "needs CUDA (the CPU run only shows the rest works)",
            }
            if name == "side-stream prefetch":  # the thread still runs on the CPU: try it there
                row = {"status": "ok (CPU, no side stream)", "detail": check()}
        else:
            try:
                row = {"status": "ok", "detail": check()}
            except Exception as error:  # reported, and the other checks still run
                row = {"status": "failed", "detail": f"{type(error).__name__}: {error}",
                       "traceback": traceback.format_exc()}  # fmt: skip
        rows.append({"check": name, **row, "seconds": round(time.perf_counter() - started, 1)})
        print(f"[smoke] {name}: {row['status']} - {row['detail']}", flush=True)
    return rows


# ------------------------------------------------------------------ throughput
def measure(model: str, setting: dict, dry: bool) -> dict:
    """Throughput and peak memory of the Trainer on ``model`` under ``setting``."""
    warmup, steps = (1, 1) if dry else (5, 30)
    trainer = _trainer(model, dry, warmup + steps, **setting)
    cuda = trainer.device.type == "cuda"
    started = time.perf_counter()
    trainer.fit(stop_at=warmup)  # includes compilation
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warm = time.perf_counter() - started
    started = time.perf_counter()
    trainer.fit()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "steps_per_second": steps / seconds,
        "patches_per_second": steps * trainer.config.batch_size / seconds,
        "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "warmup_seconds": warm,
        "batch_size": trainer.config.batch_size,
        "parameters": models.count_params(trainer.model),
    }


def measure_model(model: str, dry: bool) -> None:
    """Child process: one JSON line per setting of ``model``, printed as each finishes."""
    for name, setting in SETTINGS.items():
        if dry and name in CUDA_ONLY:
            row = {"status": "skipped", "detail": "needs CUDA"}
        else:
            try:
                row = {"status": "ok", **measure(model, setting, dry)}
            except Exception as error:
                row = {"status": "failed", "detail": f"{type(error).__name__}: {error}"}
        print(json.dumps({"model": model, "setting": name, **row}), flush=True)


def throughput(dry: bool, budget: float) -> list[dict]:
    rows, deadline = [], time.monotonic() + budget
    for left, model in zip(range(len(MODELS), 0, -1), MODELS, strict=True):
        share = (deadline - time.monotonic()) / left
        command = [sys.executable, __file__, "--measure", model] + (
            ["--cpu-dry-run"] if dry else []
        )
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                 env=_environment())  # fmt: skip
        try:
            out, _ = child.communicate(timeout=max(share, 1))
        except subprocess.TimeoutExpired:
            child.kill()
            out, _ = child.communicate()
        got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        done = {row["setting"] for row in got}
        got += [{"model": model, "setting": name, "status": "skipped",
                 "detail": f"over this model's share of the time budget ({share:.0f} s)"}
                for name in SETTINGS if name not in done]  # fmt: skip
        for row in got:
            speed = (
                f"{row['steps_per_second']:.2f} steps/s" if row["status"] == "ok" else row["detail"]
            )
            print(f"[throughput] {model} / {row['setting']}: {speed}", flush=True)
        rows += got
    return rows


# ---------------------------------------------------------------------- report
def device_name(dry: bool) -> str:
    if dry:
        return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; dry run)"
    props = torch.cuda.get_device_properties(0)
    return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"


def markdown(report: dict) -> str:
    lines = [f"# GPU check on {report['device']}", "",
             f"torch {report['torch']}, {report['seconds']:.0f} s in all.", "",
             "| smoke test | status | detail | s |", "|---|---|---|---|"]  # fmt: skip
    for row in report["smoke"]:
        lines.append(f"| {row['check']} | {row['status']} | {row['detail']} | {row['seconds']} |")
    lines += ["", "Trainer throughput (speed-up against fp32 eager of the same model):", "",
              "| model | setting | steps/s | patches/s | speed-up | peak MiB | warm-up s |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    base = {r["model"]: r for r in report["throughput"]
            if r["setting"] == "fp32 eager" and r["status"] == "ok"}  # fmt: skip
    for row in report["throughput"]:
        if row["status"] != "ok":
            lines.append(
                f"| {row['model']} | {row['setting']} | {row['status']}: {row['detail']} | | | | |"
            )
            continue
        ref = base.get(row["model"])
        speedup = f"{row['steps_per_second'] / ref['steps_per_second']:.2f}x" if ref else "-"
        peak = f"{row['peak_memory_mib']:.0f}" if row["peak_memory_mib"] else "-"
        lines.append(
            f"| {row['model']} | {row['setting']} | {row['steps_per_second']:.2f} | "
            f"{row['patches_per_second']:.0f} | {speedup} | {peak} | {row['warmup_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results"), help="results folder"
    )
    parser.add_argument(
        "--cpu-dry-run", action="store_true", help="tiny CPU run (automatic without CUDA)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds for the throughput part (default: 170 on CUDA, 400 in the dry run)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child process: one model
    args = parser.parse_args()
    dry = args.cpu_dry_run or not torch.cuda.is_available()
    if args.measure:
        measure_model(args.measure, dry)
        return
    if dry and not args.cpu_dry_run:
        print("no CUDA device: running the CPU dry run (tiny settings, CUDA-only paths skipped)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = {"device": device_name(dry), "torch": torch.__version__, "dry_run": dry,
              "python": platform.python_version()}  # fmt: skip
    report["smoke"] = smoke_tests(dry, out)
    report["throughput"] = throughput(dry, args.budget or (400 if dry else 170))
    report["seconds"] = time.perf_counter() - started
    name = "gpu_check_dry_run" if dry else "gpu_check"
    save(name, report, markdown(report).splitlines(), out)
    print(f"wrote {out / name}.json and .md")
    failed = [row["check"] for row in report["smoke"] if row["status"] == "failed"]
    if failed:
        sys.exit(f"failed smoke tests: {', '.join(failed)}")


if __name__ == "__main__":
    main()
