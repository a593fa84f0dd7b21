"""Trainer throughput: SRCNN x2 training steps per second under each speed setting.

Run: ``python benchmarks/trainer_throughput.py [--steps 60]``. Writes
``benchmarks/results/trainer_throughput.{json,md}``. On CPU it compares fp32 and channels_last;
on CUDA also bf16/fp16 autocast and torch.compile. The first steps of each setting are warm-up
and are not timed.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from report import machine, save

from restorelab import models
from restorelab.data import RandomPatches, embedded_photos
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig, Trainer


def measure(setting: dict, steps: int, warmup: int, batch_size: int, device: str) -> dict:
    task = SuperResolution(scale=2)
    patches = RandomPatches(embedded_photos("train"), 48)
    config = TrainConfig(
        steps=warmup + steps, batch_size=batch_size, progress=False, tensorboard=False,
        device=device, **setting,
    )  # fmt: skip
    trainer = Trainer(models.build("srcnn"), patches, F.mse_loss, config, task.make_pair)
    trainer.fit(stop_at=warmup)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.fit()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else None
    return {
        "setting": setting,
        "steps_per_second": steps / seconds,
        "patches_per_second": steps * batch_size / seconds,
        "peak_memory_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    settings = [
        {"amp": "off", "prefetch": 0},
        {"amp": "off"},
        {"amp": "off", "channels_last": True},
    ]
    if cuda:
        settings += [
            {"amp": "bf16"},
            {"amp": "fp16"},
            {"amp": "bf16", "channels_last": True},
            {"amp": "bf16", "channels_last": True, "compile": True},
        ]
    rows = [measure(s, args.steps, args.warmup, args.batch_size, device) for s in settings]
    device_name = machine()
    result = {"device": device_name, "torch": torch.__version__, "batch_size": args.batch_size,
              "rows": rows}  # fmt: skip
    lines = [
        f"SRCNN x2 training throughput on {device_name}, torch {torch.__version__}, batch {args.batch_size} of 48x48 patches",
        "",
        "| setting | steps/s | patches/s | peak MiB |",
        "|---|---|---|---|",
    ]
    for row in rows:
        peak = f"{row['peak_memory_mib']:.0f}" if row["peak_memory_mib"] else "-"
        name = ", ".join(f"{k}={v}" for k, v in row["setting"].items())
        lines.append(
            f"| {name} | {row['steps_per_second']:.2f} | {row['patches_per_second']:.0f} | {peak} |"
        )
    save("trainer_throughput", result, lines)


if __name__ == "__main__":
    main()
