"""ESRGAN training speed: steps per second of the L1 pre-training and of the GAN fine-tuning.

Run: ``python benchmarks/esrgan_throughput.py [--steps 20] [--batch-size 16] [--patch 128]``.
Writes ``benchmarks/results/esrgan_throughput.{json,md}``. Chapter 7's full setting: the paper's
RRDBNet (23 blocks) and VGG-style discriminator, x4 on 128x128 HR patches, AMP where CUDA has
it. The perceptual loss runs on a random VGG19 here (the same computation as the ImageNet one,
which this machine may not be able to download). The first steps are warm-up, not timed.
"""

from __future__ import annotations

import argparse
import time

import torch
from report import machine, save

from restorelab import models
from restorelab.data import RandomPatches, embedded_photos
from restorelab.losses import PerceptualLoss, WeightedSum, l1_loss
from restorelab.tasks import SuperResolution
from restorelab.train import GANConfig, GANTrainer, TrainConfig, Trainer


def seconds_per_step(trainer: Trainer, warmup: int, steps: int) -> float:
    trainer.fit(stop_at=warmup)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    trainer.fit(stop_at=warmup + steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    args = parser.parse_args()
    task = SuperResolution(scale=4, channels="rgb", pre_upsample=False)
    patches = RandomPatches(embedded_photos("train"), args.patch)
    config = dict(steps=args.warmup + args.steps, batch_size=args.batch_size, progress=False,
                  tensorboard=False, lr=1e-4)  # fmt: skip
    psnr = Trainer(models.build("rrdbnet"), patches, l1_loss, TrainConfig(**config), task.make_pair)
    content = WeightedSum(l1=(1e-2, l1_loss), perceptual=(1.0, PerceptualLoss(pretrained=False)))
    gan = GANTrainer(models.build("rrdbnet"), models.build("vgg_discriminator"), patches,
                     content.to(psnr.device), TrainConfig(**config), GANConfig(ema_decay=0.999),
                     task.make_pair)  # fmt: skip
    device = machine()
    results = {"device": device, "batch_size": args.batch_size, "patch": args.patch,
               "amp": str(psnr.amp_dtype), "torch": torch.__version__,
               "l1_seconds_per_step": seconds_per_step(psnr, args.warmup, args.steps),
               "gan_seconds_per_step": seconds_per_step(gan, args.warmup, args.steps)}  # fmt: skip
    lines = ["| device | batch x patch | AMP | L1 step | GAN step |", "|---|---|---|---|---|",
             f"| {device} | {args.batch_size} x {args.patch}² | {results['amp']} | "
             f"{results['l1_seconds_per_step']:.3f} s | {results['gan_seconds_per_step']:.3f} s |"]  # fmt: skip
    save("esrgan_throughput", results, lines)


if __name__ == "__main__":
    main()
