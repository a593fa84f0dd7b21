"""How soon chapter 8's U-Net inpainter beats the mean-colour fill, by initialisation and recipe.

The chapter 8 reference recipe (``scripts/reference_jobs.py``: U-Net of 16 base filters, depth 4,
Adam 1e-3 on a 1,500-step cosine schedule, batches of 16 crops of 128 px from 600 embedded crops
of 256 px) trained on 2 CPU cores, scored every 40 steps on the first 20 held-out crops of
256 px with their fixed damage (PSNR of the composite, RGB). The target printed first is the
mean-colour fill of the same holes (:func:`restorelab.tasks.inpaint.mean_colour_fill`).

    python benchmarks/inpainter_start.py --init paper --seed 0 --steps 280
    python benchmarks/inpainter_start.py --init default --seed 0 --steps 280   # PyTorch's init

``--init paper``: the model as built (the U-Net paper's initialisation); ``default``: every conv
reset to PyTorch's own initialisation. A run given the ``--out`` of an earlier one resumes it
from its step (its ``--steps`` is where it stops). ``--crop``, ``--batch``, ``--lr`` and ``--fill`` (the value
written into the holes) vary the recipe. About 9 minutes per 280 steps on one core. Results are
printed; the runs of 2026-12-07 are in ``results/reference_training_cpu.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from reference_jobs import (  # noqa: E402
    INPAINT_LR,
    class_slots,
    inpaint_data,
    inpaint_task,
    mean_fill_psnr,
)
from reference_plans import GPU  # noqa: E402

from restorelab.experiment import make_inpainting_trainer, mean_scores  # noqa: E402
from restorelab.train import TrainConfig, read_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", choices=("paper", "default"), default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, default=280, help="steps trained (of a 1,500 schedule)"
    )
    parser.add_argument("--crop", type=int, default=GPU.crop)
    parser.add_argument("--batch", type=int, default=GPU.inpaint_batch)
    parser.add_argument("--lr", type=float, default=INPAINT_LR)
    parser.add_argument("--fill", type=float, default=0.0)
    parser.add_argument("--val", type=int, default=20, help="held-out crops scored")
    parser.add_argument("--out", type=Path, required=True, help="the run folder (resumed)")
    args = parser.parse_args()

    plan = dataclasses.replace(GPU, crop=args.crop)
    train, true_classes, val, _ = inpaint_data(plan)
    val = val[: args.val]
    task = inpaint_task(plan, fill=args.fill)
    damage = task.fixed_damage(val)
    damaged = mean_scores(task.evaluate(None, val, damage=damage))["psnr"]
    print(f"damaged {damaged:.2f} dB, mean-colour fill {mean_fill_psnr(val, damage):.2f} dB")
    config = TrainConfig(steps=GPU.inpaint_steps, batch_size=args.batch, lr=args.lr,
                         seed=args.seed, progress=False, tensorboard=False, device="cpu")  # fmt: skip
    zeros = [0] * len(train)
    trainer = make_inpainting_trainer(task, train, zeros, val, zeros[: len(val)], config,
                                      args.out, num_classes=class_slots(plan, train, true_classes),
                                      **plan.unet)  # fmt: skip
    if args.init == "default":
        for module in trainer.model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                module.reset_parameters()
    last = args.out / "last.pt"
    first = read_checkpoint(last)["step"] if last.exists() else 0  # a resumed run goes on
    started = time.perf_counter()
    for stop in range(first + 40, args.steps + 1, 40):
        trainer.fit(resume=True, stop_at=stop)
        net = trainer.evaluated_model().eval()
        psnr = mean_scores(task.evaluate(net, val, zeros[: len(val)], damage=damage))["psnr"]
        print(f"step {stop}: {psnr:.2f} dB ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
