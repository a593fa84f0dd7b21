"""Model zoo costs: parameters, MACs per output pixel, training-step time and peak memory.

Run: ``python benchmarks/models.py [--runs 3] [--only kbnet]``. Writes
``benchmarks/results/models.{json,md}``. For every model and preset of the course:

- parameters (trainable);
- MACs per output pixel: ``torch.utils.flop_counter.FlopCounterMode`` on one 64x64 forward,
  FLOPs / 2 / output pixels (convolutions and matrix products only; element-wise work such as
  norms, activations and KBNet's unfold is not counted);
- one training step (forward + L1 loss + backward) on a batch of 4, timed as the median of up
  to ``--runs`` steps after one warm-up step (fewer for slow models, within ``--budget`` s). Batches hold 64x64 *output* patches: the x4 models
  get 16x16 inputs, the discriminator its native 128x128 patches;
- peak memory of the step: on CPU the peak resident memory of a fresh process that runs only
  this model, minus its resident memory just before the first step (the weights are not
  counted; activations and gradients are); on CUDA ``torch.cuda.max_memory_allocated`` (weights
  included);
- on CUDA also the step time under bf16 autocast with channels_last tensors.

Each model runs in its own subprocess so that memory peaks do not mix. A model whose warm-up step takes
longer than ``--max-step-seconds`` is not timed further (the table says so; on 2 CPU cores that
is the 142M-parameter KBNet).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import machine, save
from torch.utils.flop_counter import FlopCounterMode

from restorelab import models

BATCH, PATCH = 4, 64
CONFIGS = [
    ("srcnn", "paper"),
    ("arcnn", "paper"),
    ("dncnn", "paper"),
    ("dncnn", "color_blind"),
    ("srresnet", "paper"),
    ("msrresnet", "paper"),
    ("kbnet", "paper"),
    ("kbnet", "competition"),
    ("restormer", "paper"),
    ("restormer", "competition"),
    ("rrdbnet", "paper"),
    ("rrdbnet", "competition"),
    ("vgg_discriminator", "paper"),
    ("unet_inpainter", "paper"),
]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Resident memory of this process now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def make_input(model: torch.nn.Module, name: str, preset: str, batch: int) -> torch.Tensor:
    channels = models.presets(name)[preset].get("in_channels", 3)
    if model.upscale is None:  # the discriminator judges whole patches
        return torch.rand(batch, channels, 128, 128)
    return torch.rand(batch, channels, PATCH // model.upscale, PATCH // model.upscale)


def macs_per_pixel(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, list[int]]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x[:1])
    pixels = out.shape[-2] * out.shape[-1] if out.ndim == 4 else x.shape[-2] * x.shape[-1]
    return counter.get_total_flops() / 2 / pixels, list(out.shape[1:])


def train_step(model: torch.nn.Module, x: torch.Tensor, device: str, amp: bool) -> float:
    """Seconds for forward + L1 loss + backward (gradients zeroed first)."""
    model.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    F.l1_loss(out.float(), torch.zeros_like(out, dtype=torch.float32)).backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def time_steps(model, x, device: str, amp: bool, args: argparse.Namespace) -> dict:
    """Median of up to ``args.runs`` steps (fewer once ``args.budget`` seconds are spent)."""
    warmup = train_step(model, x, device, amp)
    if warmup > args.max_step_seconds:
        return {"ms": None, "note": f"not timed (the warm-up step took {warmup:.0f} s)"}
    times: list[float] = []
    while len(times) < args.runs and (not times or sum(times) < args.budget):
        times.append(train_step(model, x, device, amp))
    return {"ms": 1000 * statistics.median(times), "runs": len(times)}


def measure_one(name: str, preset: str, args: argparse.Namespace) -> dict:
    """All measurements of one model (runs inside its own process)."""
    torch.manual_seed(0)
    model = models.build(name, preset)
    x = make_input(model, name, preset, BATCH)
    row = {"model": name, "preset": preset, "params": models.count_params(model)}
    row["macs_per_pixel"], row["output_shape"] = macs_per_pixel(model, x)
    row["input_shape"] = list(x.shape)
    model.train()
    before = current_rss_mib()
    cpu = time_steps(model, x, "cpu", False, args)
    row["cpu_step_peak_mib"] = peak_rss_mib() - before
    row["cpu_ms"], row["cpu_runs"], row["cpu_note"] = cpu["ms"], cpu.get("runs"), cpu.get("note")
    if torch.cuda.is_available():
        model, x = model.cuda(), x.cuda()
        torch.cuda.reset_peak_memory_stats()
        row["cuda_ms"] = time_steps(model, x, "cuda", False, args)["ms"]
        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        row["cuda_amp_cl_ms"] = time_steps(model, x, "cuda", True, args)["ms"]
    return row


def run_isolated(name: str, preset: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--one", name, preset, "--runs", str(args.runs),
               "--budget", str(args.budget), "--max-step-seconds", str(args.max_step_seconds)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"model": name, "preset": preset, "error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict], machine: str, cuda: bool) -> str:
    lines = [
        f"Model zoo costs on {machine}, torch {torch.__version__}. Training step = forward + L1 + "
        f"backward on a batch of {BATCH} patches of {PATCH}x{PATCH} output pixels (x4 models: "
        "16x16 inputs; discriminator: 128x128 inputs), median of the timed steps. MACs per "
        "output pixel count convolutions and matrix products (per input pixel for the "
        "discriminator). CPU step: median ms (number of timed steps); the CPU is shared, so expect "
        "run-to-run variation. CPU peak = growth of the process's peak resident memory during "
        "the steps (weights excluded).",
        "",
        "| model | preset | params | MACs/pixel | CPU step ms | CPU peak MiB |"
        + (" CUDA ms | CUDA bf16+CL ms | CUDA peak MiB |" if cuda else ""),
        "|---|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if cuda else ""),
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['preset']} | failed: {r['error']} |")
            continue
        cpu = r["cpu_note"] or f"{r['cpu_ms']:.0f} ({r['cpu_runs']})"
        line = (
            f"| {r['model']} | {r['preset']} | {r['params']:,} | {r['macs_per_pixel'] / 1e3:,.1f}K"
            f" | {cpu} | {fmt(r['cpu_step_peak_mib'], '.0f')} |"
        )
        if cuda:
            line += (
                f" {fmt(r.get('cuda_ms'), '.1f')} | {fmt(r.get('cuda_amp_cl_ms'), '.1f')}"
                f" | {fmt(r.get('cuda_peak_mib'), '.0f')} |"
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed steps per model (at most)")
    parser.add_argument(
        "--budget", type=float, default=8.0, help="seconds of timed steps per model"
    )
    parser.add_argument("--max-step-seconds", type=float, default=20.0)
    parser.add_argument("--only", nargs="*", help="model names to measure (default: all)")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one, args)))
        return
    cuda = torch.cuda.is_available()
    device_name = machine()
    rows = []
    for name, preset in CONFIGS:
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        rows.append(run_isolated(name, preset, args))
        print(f"{name}/{preset}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report = {"device": device_name, "torch": torch.__version__, "batch": BATCH, "patch": PATCH}
    save("models", {**report, "rows": rows}, markdown(rows, device_name, cuda).splitlines())


if __name__ == "__main__":
    main()
