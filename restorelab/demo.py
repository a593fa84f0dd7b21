"""``restorelab demo``: SRCNN x2 trained on the embedded photos, on CPU, in about a minute.

The walking skeleton of chapter 1 in one call: train (resuming an interrupted run), evaluate on
held-out photos against bicubic, and write ``comparison.png``, ``curves.png`` and
``metrics.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from restorelab.data import embedded_photos
from restorelab.experiment import make_trainer, mean_scores, results_table
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig
from restorelab.viz import comparison_figure, curves_figure


def run_demo(
    out_dir: str | Path = "runs/demo",
    scale: int = 2,
    steps: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Train SRCNN (Y channel) for ``steps`` steps and compare it with bicubic; returns the metrics."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    task = SuperResolution(scale=scale)
    val = embedded_photos("val")
    config = TrainConfig(
        steps=steps,
        batch_size=16,
        lr=1e-3,
        scheduler="cosine",
        val_every=max(steps // 4, 1),
        log_every=10,
        seed=seed,
        progress=progress,
    )
    trainer = make_trainer("srcnn", task, embedded_photos("train"), val, config, out_dir)
    trainer.fit(resume=True)
    model = trainer.model.eval()
    bicubic = mean_scores(task.evaluate(None, val))
    srcnn = mean_scores(task.evaluate(model, val))
    metrics = {
        "scale": scale,
        "steps": steps,
        "bicubic_psnr_y": bicubic["psnr_y"],
        "model_psnr_y": srcnn["psnr_y"],
        "bicubic_ssim_y": bicubic["ssim_y"],
        "model_ssim_y": srcnn["ssim_y"],
        "seconds": time.perf_counter() - started,
    }
    hr = task.crop(val[0])
    lr = task.degrade(hr)
    sr = task.restore(model, lr)
    bicubic_image = task.upsample(lr).clamp(0, 1)
    comparison_figure(
        {
            f"bicubic {task.score(bicubic_image, hr)['psnr_y']:.2f} dB": bicubic_image,
            f"SRCNN {task.score(sr, hr)['psnr_y']:.2f} dB": sr,
            "ground truth": hr,
        },
        path=out_dir / "comparison.png",
        title=f"x{scale} super-resolution of a held-out photo (Y-PSNR)",
    )
    curves_figure(trainer.history, out_dir / "curves.png", {"bicubic": bicubic["psnr_y"]})
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        results_table(
            {"bicubic": bicubic, "SRCNN": srcnn},
            f"x{scale} on {len(val)} held-out embedded photos (Y channel, {scale}px border shaved)",
        )
    )
    print(f"wrote {out_dir}/comparison.png, curves.png, metrics.json in {metrics['seconds']:.0f} s")
    return metrics
