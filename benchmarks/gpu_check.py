"""GPU check of issue 18: every CUDA path of the Trainer once, then its speed per model.

Run on a CUDA machine from the repository root (about 4 minutes with the BasicSR peer;
restorelab need not be installed): ``bash benchmarks/gpu.sh [OUT_DIR]``, or ``PYTHONPATH=.
python3 benchmarks/gpu_check.py --out OUT_DIR``. Without CUDA (or with ``--cpu-dry-run``) it
runs the same code on the CPU with tiny settings and skips the CUDA-only paths, printing why.

1. Smoke tests, each reported ok / failed (with the error) / skipped (with the reason): AMP bf16
   (the network really runs in bf16), AMP fp16 with the gradient scaler, channels_last,
   torch.compile (first loss as eager's), the side-stream prefetch (batches arrive intact on
   the device), and ``python3 -m torch.distributed.run --nproc_per_node=1 -m restorelab train``
   (NCCL on CUDA, gloo on CPU).
2. Trainer speed per model (SRCNN, DnCNN, MSRResNet, Restormer and KBNet presets, ``MODELS``)
   under each setting of ``SETTINGS``: patches/s after warm-up (compilation included there),
   the share of the step the GPU is busy (the union of the CUDA kernels torch.profiler records
   over a few steps, divided by their wall time), peak memory, and the ratios to fp32 eager
   (the old loader path) and to the old fp32 eager patches/s of ``OLD_PATCHES_PER_SECOND``.
   Each model runs in its own process (memory peaks do not mix) with a share of the time
   budget (``--budget``); a setting that does not finish in it (a slow torch.compile) is
   reported as skipped. The report ends with issue 18's targets and whether each was reached.

Writes ``OUT_DIR/gpu_check.{json,md}`` (``gpu_check_dry_run.*`` on the CPU), naming the device.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # restorelab from this checkout, installed or not

from report import save  # noqa: E402 (this folder, on sys.path when run as a script)

from restorelab import models  # noqa: E402
from restorelab.data import Prefetcher, RandomPatches, embedded_photos  # noqa: E402
from restorelab.experiment import make_task  # noqa: E402
from restorelab.train import TrainConfig, Trainer, fast_settings  # noqa: E402

# model, preset, task settings, patch size, batch size (on CUDA: each model's full setting)
MODELS = {
    "srcnn": ("paper", {"name": "sr", "scale": 2}, 48, 32),
    "dncnn": ("paper", {"name": "denoise", "sigma": 25}, 48, 32),
    "msrresnet": ("paper", {"name": "sr", "scale": 4, "channels": "rgb", "pre_upsample": False}, 96, 16),
    "restormer": ("competition", {"name": "denoise", "sigma": 25, "channels": "rgb"}, 64, 8),
    "kbnet": ("competition", {"name": "denoise", "sigma": 25, "channels": "rgb"}, 64, 8),
}  # fmt: skip
# share of the time budget: the transformers compile longest
BUDGET_WEIGHTS = {"srcnn": 1.0, "dncnn": 1.0, "msrresnet": 1.5, "restormer": 2.5, "kbnet": 2.5}
# fp32 eager patches/s on one H100 before issue 18 (benchmarks/results/gpu_check.md, commit
# d06c905: the DataLoader path, one loss read per step)
OLD_PATCHES_PER_SECOND = {"srcnn": 4536, "dncnn": 2175, "msrresnet": 971, "restormer": 45,
                          "kbnet": 69}  # fmt: skip
# issue 18's targets on the GPU: the fast preset's patches/s over the old ones, the GPU's busy
# share under the fast preset, and the best setting over fp32 eager
OLD_SPEEDUP_TARGET = {"srcnn": 10.0, "dncnn": 10.0, "msrresnet": 4.0, "restormer": 3.0,
                      "kbnet": 3.0}  # fmt: skip
BUSY_TARGET, OVER_EAGER_TARGET = 0.85, 1.3

EAGER, FAST = "fp32 eager (loader)", "fast preset"
_BF16_CL = {"amp": "bf16", "channels_last": True, "sampler": "device"}
SETTINGS: dict[str, dict | None] = {  # None: fast_settings(model, device), the --fast preset
    EAGER: {"amp": "off", "sampler": "loader"},
    "fp32 eager (device sampler)": {"amp": "off", "sampler": "device"},
    "bf16 + channels_last (device sampler)": _BF16_CL,
    "compile default": {**_BF16_CL, "compile": True, "compile_mode": "default"},
    "compile reduce-overhead": {**_BF16_CL, "compile": True, "compile_mode": "reduce-overhead"},
    FAST: None,
}
# the order a model's process measures them: what the targets need first, compilations last
ORDER = [EAGER, FAST, "bf16 + channels_last (device sampler)", "fp32 eager (device sampler)",
         "compile default", "compile reduce-overhead"]  # fmt: skip
# skipped in the CPU dry run: CUDA graphs, and compilations that take minutes on a CPU
CUDA_ONLY = {"compile default", "compile reduce-overhead"}


def _trainer(
    model: str,
    dry: bool,
    steps: int,
    *,
    device: str | None = None,
    batch: int | None = None,
    patch: int | None = None,
    **setting,
) -> Trainer:
    """A Trainer of ``model`` (its ``MODELS`` preset, task, patch and batch; tiny on the CPU of
    a dry run) on the embedded photos, with ``setting``'s TrainConfig fields on top."""
    preset, task_settings, full_patch, full_batch = MODELS[model]
    task = make_task(**task_settings)
    net = models.build(model, preset, in_channels=task.model_channels,
                       out_channels=task.model_channels)  # fmt: skip
    fields = {"steps": steps, "batch_size": batch or (2 if dry else full_batch), "lr": 1e-4,
              "progress": False, "tensorboard": False,
              "device": device or ("cpu" if dry else "cuda"), **setting}  # fmt: skip
    patches = RandomPatches(embedded_photos("train"), patch or (32 if dry else full_patch))
    return Trainer(net, patches, F.l1_loss, TrainConfig(**fields), task.make_pair)


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


def smoke_torchrun(dry: bool) -> str:
    """A 20-step run under torchrun, written into a temporary folder (OUT_DIR gets only the
    report: the GPU machine sends back a few files)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node=1", "-m", "restorelab", "train", "--steps", "20",
                   "--val-every", "10", "--batch-size", "8", "--patch-size", "32", "--device",
                   "cpu" if dry else "cuda", "--out", str(Path(folder) / "run"), "--overwrite"]  # fmt: skip
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


def smoke_tests(dry: bool) -> list[dict]:
    checks: list[tuple[str, bool, Callable[[], str]]] = [
        ("AMP bf16", False, lambda: smoke_amp("bf16", dry)),
        ("AMP fp16 + GradScaler", True, lambda: smoke_amp("fp16", dry)),
        ("channels_last", False, lambda: smoke_channels_last(dry)),
        ("torch.compile", True, lambda: smoke_compile(dry)),
        ("side-stream prefetch", True, lambda: smoke_prefetch(dry)),
        ("torchrun --nproc_per_node=1", False, lambda: smoke_torchrun(dry)),
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
def busy_share(intervals: Iterable[tuple[float, float]], wall: float) -> float:
    """The share of ``wall`` covered by the union of ``intervals`` ((start, end), same unit):
    kernels of several streams that overlap count once."""
    covered, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered / wall


def kernel_intervals(profiler: torch.profiler.profile) -> list[tuple[float, float]]:
    """(start, end) in microseconds of every GPU kernel ``profiler`` recorded."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(path))
        events = json.loads(path.read_text()).get("traceEvents", [])
    return [(e["ts"], e["ts"] + e["dur"]) for e in events
            if e.get("cat") == "kernel" and "dur" in e]  # fmt: skip


def _before_steps(trainer: Trainer, actions: dict[int, Callable[[], None]]) -> None:
    """Run ``actions[k]`` when the Trainer has taken k steps, before it takes the next one."""
    step_metrics = trainer.step_metrics

    def wrapped(batch):
        if trainer.step in actions:
            actions[trainer.step]()
        return step_metrics(batch)

    trainer.step_metrics = wrapped


def timed_fit(trainer: Trainer, warmup: int, steps: int, profiled: int) -> dict:
    """Train ``warmup + steps + profiled`` steps (``trainer.config.steps``) in one ``fit``;
    time the middle ``steps`` (device synchronised at both ends), then record the last
    ``profiled`` (may be 0) under torch.profiler. Returns steps/s, warm-up seconds (compilation
    included), the GPU's busy share during the profiled steps (None without CUDA, profiled
    steps or recorded kernels; ``profile_note`` says why when it should have been there) and
    peak memory. A failure in the profiled steps loses the profile, not the timing.

    The profiler starts after the warm-up, so after any CUDA graph was captured: torch's old
    work-around (``torch.profiler._utils._init_for_cuda_graphs``, an empty profile before
    capture) is not used, as it was reported to leave later profiles of graph replays empty on
    CUDA 13."""
    if trainer.config.steps != warmup + steps + profiled:
        raise ValueError(
            f"the trainer has {trainer.config.steps} steps, not {warmup}+{steps}+{profiled}"
        )
    cuda = trainer.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    activity = torch.profiler.ProfilerActivity.CUDA if cuda else torch.profiler.ProfilerActivity.CPU
    profiler = torch.profiler.profile(activities=[activity])
    marks: dict[str, float] = {}

    def start_timing() -> None:
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        marks["timed"] = time.perf_counter()

    def start_profiling() -> None:
        sync()
        marks["profiled"] = time.perf_counter()
        profiler.start()
        marks["profiler on"] = time.perf_counter()

    _before_steps(trainer, {warmup: start_timing, warmup + steps: start_profiling})
    started, note = time.perf_counter(), ""
    try:
        trainer.fit()
        sync()
    except Exception as error:  # in the profiled steps: the timing stands, the profile is lost
        if "profiled" not in marks:
            raise
        note = f"profiling failed: {type(error).__name__}: {error}"
    ended = time.perf_counter()
    marks.setdefault("profiled", ended)  # profiled == 0: the timed steps end the run
    busy = None
    if "profiler on" in marks:
        try:
            profiler.stop()
            kernels = kernel_intervals(profiler)
        except Exception as error:
            note, kernels = note or f"profiler failed: {type(error).__name__}: {error}", []
        if cuda and kernels:
            busy = busy_share(kernels, (ended - marks["profiler on"]) * 1e6)
        elif cuda:
            note = note or "the profiler recorded no kernels"
    return {
        "steps_per_second": steps / (marks["profiled"] - marks["timed"]),
        "warmup_seconds": marks["timed"] - started,
        "gpu_busy": busy,
        "profile_note": note,
        "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def setting_fields(name: str, model: str, device: str) -> dict:
    """The TrainConfig fields of setting ``name`` for ``model`` on ``device``."""
    fields = SETTINGS[name]
    return fast_settings(model, device) if fields is None else dict(fields)


def measure(model: str, setting: dict, dry: bool) -> dict:
    """Speed, GPU-busy share and peak memory of the Trainer on ``model`` under ``setting``."""
    warmup, steps, profiled = (1, 2, 2) if dry else (5, 30, 5)
    # state an earlier setting of this process left behind: cuDNN autotuning (a Trainer only
    # ever turns it on), compiled code and its CUDA graphs' memory
    torch.backends.cudnn.benchmark = False
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    trainer = _trainer(model, dry, warmup + steps + profiled, **setting)
    row = timed_fit(trainer, warmup, steps, profiled)
    batch = trainer.config.batch_size
    return {**row, "patches_per_second": row["steps_per_second"] * batch, "batch_size": batch,
            "patch_size": trainer.train_set.patch_size,
            "parameters": models.count_params(trainer.model)}  # fmt: skip


def measure_model(model: str, dry: bool) -> None:
    """Child process: one JSON line per setting of ``model``, printed as each finishes."""
    device = "cpu" if dry else "cuda"
    for name in ORDER:
        fields = setting_fields(name, model, device)
        if dry and name in CUDA_ONLY:
            row = {
                "status": "skipped",
                "detail": "CUDA only (CUDA graphs, or minutes of compiling)",
            }
        else:
            try:
                row = {"status": "ok", **measure(model, fields, dry)}
            except Exception as error:
                row = {"status": "failed", "detail": f"{type(error).__name__}: {error}"}
        print(json.dumps({"model": model, "setting": name, "fields": fields, **row}), flush=True)


def throughput(dry: bool, budget: float) -> list[dict]:
    """Every model under every setting, each model in a child process with its share of
    ``budget`` seconds (``BUDGET_WEIGHTS`` on CUDA, equal shares in the dry run, which compiles
    nothing; what a model leaves goes to the next ones)."""
    rows, deadline = [], time.monotonic() + budget
    weights = {model: 1.0 for model in MODELS} if dry else BUDGET_WEIGHTS
    for index, model in enumerate(MODELS):
        left = sum(weights[m] for m in list(MODELS)[index:])
        share = (deadline - time.monotonic()) * weights[model] / left
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
        got = {row["setting"]: row for row in map(json.loads, _json_lines(out))}
        for name in SETTINGS:
            row = got.get(name) or {
                "model": model, "setting": name, "status": "skipped",
                "fields": setting_fields(name, model, "cpu" if dry else "cuda"),
                "detail": f"over this model's share of the time budget ({share:.0f} s)",
            }  # fmt: skip
            speed = (
                f"{row['patches_per_second']:.0f} patches/s"
                if row["status"] == "ok"
                else row["detail"]
            )
            print(f"[throughput] {model} / {name}: {speed}", flush=True)
            rows.append(row)
    return rows


def _json_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("{")]


def _goal(model: str, name: str, value: float | None, target: float, why_not: str | None,
          unit: str = "x") -> dict:  # fmt: skip
    """One target row; ``why_not``: the reason it cannot be evaluated (None: it can)."""
    return {"model": model, "goal": name, "measured": None if why_not else value,
            "target": target, "unit": unit, "reached": None if why_not else value >= target,
            "note": why_not or ""}  # fmt: skip


def targets(rows: list[dict], dry: bool) -> list[dict]:
    """Issue 18's targets per model: what was measured, the target, and whether it was reached
    (None: not evaluated, with the reason in ``note``)."""
    found = {(r["model"], r["setting"]): r for r in rows if r["status"] == "ok"}
    goals = []
    for model in MODELS:
        fast, eager = found.get((model, FAST)), found.get((model, EAGER))
        ok = [r for r in rows if r["model"] == model and r["status"] == "ok"]
        best = max(ok, key=lambda r: r["patches_per_second"], default=None)
        missing = None if fast else "fast preset not measured"
        goals.append(_goal(
            model, "fast preset patches/s over the old fp32 eager (H100)",
            fast and fast["patches_per_second"] / OLD_PATCHES_PER_SECOND[model],
            OLD_SPEEDUP_TARGET[model], "dry run: the old numbers are an H100's" if dry else missing,
        ))  # fmt: skip
        goals.append(_goal(
            model, f"GPU busy under the fast preset (batch {fast['batch_size'] if fast else '-'})",
            fast and fast["gpu_busy"], BUSY_TARGET,
            "no CUDA: no kernels to profile" if dry else missing or (
                None if fast["gpu_busy"] is not None else fast["profile_note"] or "no profile"),
            unit="share",
        ))  # fmt: skip
        over = best["patches_per_second"] / eager["patches_per_second"] if eager else None
        goals.append(_goal(
            model, f"best setting ({best['setting'] if best else '-'}) over fp32 eager (loader)",
            over, OVER_EAGER_TARGET, None if eager else "fp32 eager not measured",
        ))  # fmt: skip
    return goals


# ---------------------------------------------------------------------- report
def device_name(dry: bool) -> str:
    if dry:
        return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; dry run)"
    props = torch.cuda.get_device_properties(0)
    return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"


def _fields_text(fields: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def markdown(report: dict) -> str:
    lines = [f"# GPU check on {report['device']}", "",
             f"torch {report['torch']}, {report['seconds']:.0f} s in all (throughput budget "
             f"{report['budget']:.0f} s).", "",
             "| smoke test | status | detail | s |", "|---|---|---|---|"]  # fmt: skip
    for row in report["smoke"]:
        lines.append(f"| {row['check']} | {row['status']} | {row['detail']} | {row['seconds']} |")
    lines += ["", "Settings (TrainConfig fields; the fast preset is "
              "`restorelab.train.fast_settings(model, device)`, listed per model below):", ""]  # fmt: skip
    lines += [f"- {name}: {_fields_text(fields)}" for name, fields in SETTINGS.items() if fields]
    lines += ["", "Trainer speed: patches/s after warm-up; x eager: over fp32 eager (loader) of "
              "the same model; x old: over the old fp32 eager patches/s (H100, before issue 18); "
              "GPU busy: CUDA kernel time / wall time over the profiled steps.", "",
              "| model | setting | batch | steps/s | patches/s | x eager | x old | GPU busy | "
              "peak MiB | warm-up s |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    base = {r["model"]: r for r in report["throughput"]
            if r["setting"] == EAGER and r["status"] == "ok"}  # fmt: skip
    for row in report["throughput"]:
        if row["status"] != "ok":
            lines.append(f"| {row['model']} | {row['setting']} | {row['status']}: "
                         f"{row['detail']} | | | | | | | |")  # fmt: skip
            continue
        ref = base.get(row["model"])
        pps = row["patches_per_second"]
        eager = f"{pps / ref['patches_per_second']:.2f}x" if ref else "-"
        old = "-" if report["dry_run"] else f"{pps / OLD_PATCHES_PER_SECOND[row['model']]:.2f}x"
        busy = "-" if row["gpu_busy"] is None else f"{row['gpu_busy']:.0%}"
        busy += f" ({row['profile_note']})" if row.get("profile_note") else ""
        peak = f"{row['peak_memory_mib']:.0f}" if row["peak_memory_mib"] else "-"
        lines.append(
            f"| {row['model']} | {row['setting']} | {row['batch_size']} | "
            f"{row['steps_per_second']:.2f} | {pps:.0f} | {eager} | {old} | {busy} | {peak} | "
            f"{row['warmup_seconds']:.1f} |"
        )
    fast = {r["model"]: r["fields"] for r in report["throughput"] if r["setting"] == FAST
            and "fields" in r}  # fmt: skip
    lines += ["", "Fast preset per model:", ""]
    lines += [f"- {model}: {_fields_text(fields)}" for model, fields in fast.items()]
    lines += ["", "Targets of issue 18 (on the GPU):", "",
              "| model | target | measured | needed | reached |", "|---|---|---|---|---|"]  # fmt: skip
    for goal in report["targets"]:
        show = (lambda v: f"{v:.0%}") if goal["unit"] == "share" else (lambda v: f"{v:.2f}x")
        measured = "-" if goal["measured"] is None else show(goal["measured"])
        reached = {True: "yes", False: "**no**", None: f"not evaluated ({goal['note']})"}[
            goal["reached"]
        ]
        lines.append(f"| {goal['model']} | {goal['goal']} | {measured} | "
                     f">= {show(goal['target'])} | {reached} |")  # fmt: skip
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
        help="seconds for the throughput part (default: 150 on CUDA, 400 in the dry run)",
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
    budget = args.budget or (400 if dry else 150)
    report = {"device": device_name(dry), "torch": torch.__version__, "dry_run": dry,
              "python": platform.python_version(), "budget": budget}  # fmt: skip
    report["smoke"] = smoke_tests(dry)
    report["throughput"] = throughput(dry, budget)
    report["targets"] = targets(report["throughput"], dry)
    report["seconds"] = time.perf_counter() - started
    name = "gpu_check_dry_run" if dry else "gpu_check"
    save(name, report, markdown(report).splitlines(), out)
    print(f"wrote {out / name}.json and .md")
    failed = [row["check"] for row in report["smoke"] if row["status"] == "failed"]
    if failed:
        sys.exit(f"failed smoke tests: {', '.join(failed)}")


if __name__ == "__main__":
    main()
