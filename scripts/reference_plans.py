"""What `scripts/train_references.py train` trains for chapters 5-9 and how it is sized
(:data:`GPU`, :data:`DRY`), and what every job of scripts/reference_jobs.py shares: its
:class:`Context`, the deadline (:func:`fit_until`), the fp16 check and the targets of the cards.

GPU sizing (one H100, 16 cores, ~5 minutes of training, 12 processes sharing the card; CUDA
time-slices processes, so their GPU times add up). Per-step GPU times alone, from
benchmarks/results/gpu_check.md (fp32 eager; the --fast preset is expected to be faster, and
benchmarks/gpu.sh in the same session measures it): Restormer (competition) 0.18 s and KBNet
0.12 s per step of 8 x 128² patches, DnCNN 0.015 s and MSRResNet 0.016 s per step of 32 patches,
SRCNN 0.007 s. Scaled to each job's batch and patch (cost ~ pixels per step):

| job | steps x batch x patch | est. GPU s |
|---|---|---|
| descanning, 5 rows (equal budget, 200 pages of 512 px) | 500 x 8 x 96² each | ~75 together |
| esrgan: RRDBNet (4 RRDBs) L1, then RaGAN fine-tuning | 1,000 + 400 x 16 x 128² HR | ~40 |
| inpaint-seed0/1/2: BASELINE, MAX_CLASS, REAL (U-Net 16 x depth 4) | 3 x 3 x 1,500 x 16 x 128² | ~105 |
| upscaler: SRCNN x2 RGB (chapter 8's) | 3,000 x 16 x 128² | ~15 |
| dncnn-s25, srcnn-x2 (chapters 1-4, longer) | 8,000 x 128 x 40² / 48² | ~100 together |

About 375 GPU-seconds for a 270 s window, so the deadline, not the step count, may end the
slowest runs: each Python job trains in chunks of 1/20 of its steps and stops at --minutes minus
the scoring reserve (the cosine schedule then stops early; result.json records steps_done), and
its best.pt (picked on its validation) is scored. The first GPU session is the calibration:
`summary` prints each job's steps/s, and a rerun with --steps-scale resumes every run (a longer
schedule is allowed) from its last.pt. The descanning budget is far below the table's
FULL_BUDGET (100k x 16 x 128²); RRDBNet has 4 RRDBs instead of 23 and the inpainter 16
base filters instead of the project's 32: the results must come back in at most 64 MB (fp16
weights, `pack` cuts the archive into parts of at most 15 MB), and the cards say so.

The chapter 8 step counts come from a run of these jobs on 2 CPU cores
(benchmarks/results/reference_training_cpu.md): after 280 of 500 steps the inpainters were
still below their target (20.5-22.0 dB against the mean-colour fill's 23.2), and the upscaler
was below bicubic after 1,400 steps (31.6 against 32.1 dB): 500 and 2,000 were too few. Part
of the inpainters' slow start came from PyTorch's default conv initialisation; the U-Net now has
the U-Net paper's, 0.9-2.1 dB ahead of it for the same seed from step 240 to 640, and above
the fill from step 240-360 (benchmarks/inpainter_start.py).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from restorelab import descanning, pretrained
from restorelab.models import count_params
from restorelab.train import TrainConfig, fast_settings, read_checkpoint

RUNS_AT_ONCE = "RESTORELAB_RUNS_AT_ONCE"  # set by `train` for the runs it starts
CHUNKS = 20  # a modern job checks the clock after every 1/CHUNKS of its steps


# ------------------------------------------------------------------ what each setting trains
@dataclass(frozen=True)
class Plan:
    """Everything a `train` call sizes: the GPU run, or the CPU dry run (tiny, same code paths)."""

    setting: str  # the descanning rows' models: "full" (GPU) or "QUICK"
    pages: int
    val_pages: int
    page_size: int
    descan: descanning.Budget
    rrdb: dict
    discriminator: dict
    sr_patch: int
    sr_batch: int
    psnr_steps: int
    gan_steps: int
    inpaint_images: int
    inpaint_val: int
    image_size: int
    crop: int
    unet: dict
    inpaint_batch: int
    inpaint_steps: int
    min_cluster_size: int
    upscaler_steps: int
    upscaler_kwargs: dict = field(default_factory=dict)
    classic_steps: int = 8000


GPU = Plan(
    setting="full", pages=200, val_pages=8, page_size=512,
    descan=descanning.Budget(steps=500, batch_size=8, patch_size=96, lr=5e-4),
    rrdb={"num_blocks": 4}, discriminator={}, sr_patch=128, sr_batch=16, psnr_steps=1000,
    gan_steps=400, inpaint_images=600, inpaint_val=60, image_size=256, crop=128,
    unet={"features": 16, "depth": 4, "embed_dim": 64}, inpaint_batch=16, inpaint_steps=1500,
    min_cluster_size=20, upscaler_steps=3000, classic_steps=8000,
)  # fmt: skip
DRY = Plan(
    setting="QUICK", pages=4, val_pages=2, page_size=64,
    descan=descanning.Budget(steps=4, batch_size=2, patch_size=32),
    rrdb={"features": 8, "growth": 4, "num_blocks": 1}, discriminator={"features": 4},
    sr_patch=32, sr_batch=2, psnr_steps=4, gan_steps=2, inpaint_images=40, inpaint_val=4,
    image_size=48, crop=32, unet={"features": 4, "depth": 2, "embed_dim": 8}, inpaint_batch=2,
    inpaint_steps=2, min_cluster_size=5, upscaler_steps=4, upscaler_kwargs={"features": (8, 4)},
    classic_steps=4,
)  # fmt: skip

DESCAN_JOBS = {
    "descanning-dncnn": "DnCNN", "descanning-srresnet-x1": "SRResNet-style x1",
    "descanning-kbnet": "KBNet", "descanning-restormer": "Restormer",
    "descanning-baseline": descanning.BASELINE_ROW,
}  # fmt: skip
SEEDS = (0, 1, 2)
STRATEGIES = {
    "BASELINE": "inpaint-baseline",
    "REAL": "inpaint-real",
    "MAX_CLASS": "inpaint-max-class",
}
JOBS = [*DESCAN_JOBS, "esrgan", *(f"inpaint-seed{s}" for s in SEEDS), "upscaler",
        "dncnn-s25", "srcnn-x2"]  # fmt: skip
CLASSIC = ("dncnn-s25", "srcnn-x2")  # the chapter 1-4 references rerun longer


def scaled(plan: Plan, factor: float) -> Plan:
    """``plan`` with every step count multiplied by ``factor`` (a resumed, longer schedule)."""
    if factor == 1:
        return plan
    up = lambda n: max(int(n * factor), 1)  # noqa: E731
    return dataclasses.replace(
        plan, descan=dataclasses.replace(plan.descan, steps=up(plan.descan.steps)),
        psnr_steps=up(plan.psnr_steps), gan_steps=up(plan.gan_steps),
        inpaint_steps=up(plan.inpaint_steps), upscaler_steps=up(plan.upscaler_steps),
        classic_steps=up(plan.classic_steps),
    )  # fmt: skip


# ------------------------------------------------------------------ shared by the modern jobs
@dataclass
class Context:
    """What a job needs: where it writes, when it must stop, what it trains on."""

    plan: Plan
    out: Path
    data: str
    until: float  # time.time() at which training stops (scoring follows)
    device: torch.device
    commit: str
    references: dict = field(default_factory=dict)  # result.json's "references"
    fp32_eager: bool = False  # the retry of a run that diverged: no bf16, no compile

    def fast(self, model_name: str, compile: bool = True) -> dict:
        """The --fast preset's TrainConfig fields for ``model_name`` here; ``compile``: False
        for the GAN phase."""
        settings = fast_settings(model_name, self.device)
        if self.fp32_eager:
            settings = {"sampler": settings["sampler"], "amp": "off"}
        if not compile:
            settings = {k: v for k, v in settings.items() if not k.startswith("compile")}
        return settings

    def config(self, steps: int, batch: int, **fields) -> TrainConfig:
        return TrainConfig(
            steps=steps, batch_size=batch, val_every=max(steps // 5, 1),
            log_every=max(min(steps // 20, 50), 1), progress=False, tensorboard=False,
            device=str(self.device), **fields,
        )  # fmt: skip

    def record(self, name: str, model: torch.nn.Module, spec: dict, **entry) -> None:
        """Keep reference ``name``: its fp32 weights in weights/, its card data for publish."""
        pretrained.save_weights(
            {k: v.detach().cpu() for k, v in model.state_dict().items()},
            self.out / "weights" / f"{name}.safetensors", half=False,
        )  # fmt: skip
        self.references[name] = {"model": spec, "parameters": count_params(model), **entry}


def retried_in_fp32_eager(job: str, out: Path, attempt: Callable[[bool], None]) -> str:
    """Run ``attempt(False)`` (the --fast preset); when it raises (a loss that diverged under
    bf16, a compiler failure), empty ``out`` and run ``attempt(True)`` (fp32 eager) once: the GPU
    call comes once a session, so a job is retried, not lost. A fault of the job itself fails
    again and is raised then. Returns the settings that trained it, for run.json."""
    try:
        attempt(False)
        return "--fast"
    except Exception as error:
        failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    print(f"{job}: the --fast run failed ({failure}); trained again in fp32 eager", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    attempt(True)
    return f"fp32 eager (the --fast run failed: {failure})"


def fit_until(trainer, folder: Path, until: float) -> dict:
    """Train ``trainer`` (its run folder ``folder``, resumed) in chunks of 1/CHUNKS of its
    steps until they are done or the next chunk, as long as the last, would end after ``until``
    (one chunk at least: a late start still trains and scores; on 2 CPU cores a chunk took
    minutes, and the job was killed before scoring); returns ``steps_done`` and the
    ``steps_per_s`` of this call (validations included: the rate to size the next run by)."""
    steps = trainer.config.steps
    chunk = max(steps // CHUNKS, 1)
    step = first = (
        read_checkpoint(folder / "last.pt")["step"] if (folder / "last.pt").exists() else 0
    )
    started = time.perf_counter()
    while step < steps:
        began = time.time()
        trainer.fit(resume=True, stop_at=min(step + chunk, steps))
        step = trainer.step
        now = time.time()
        if now + (now - began) >= until:  # the next chunk, as long as this one, would end late
            break
    rate = (step - first) / max(time.perf_counter() - started, 1e-9)
    return {"steps_done": step, "steps_per_s": round(rate, 2)}


def best_weights(trainer, folder: Path) -> torch.nn.Module:
    """The trainer's evaluated network with best.pt's weights (when a validation ran), eval mode."""
    model = trainer.evaluated_model()
    if (folder / "best.pt").exists():
        state = read_checkpoint(folder / "best.pt", trainer.device)
        model.load_state_dict(state["ema"] if state.get("ema") else state["model"])
    return model.eval()


def half_gap(model: torch.nn.Module, score: Callable[[torch.nn.Module], dict]) -> float:
    """The largest move of a PSNR that ``score`` measures when the weights are rounded to fp16."""
    full = score(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
    )
    rounded = score(model)
    model.load_state_dict(state)
    return max((abs(full[k] - rounded[k]) for k in full if "psnr" in k), default=0.0)


def target(what: str, value: float | None, threshold: float, higher: bool) -> dict:
    """A card's target: met when ``value`` is above (``higher``) or below ``threshold``."""
    passed = None if value is None else (value > threshold if higher else value < threshold)
    return {"what": what, "value": value, "threshold": threshold, "passed": passed}


def hardware(device: torch.device) -> str:
    """The machine a run trained on, for its card: the GPU's name, or the CPU's and its cores;
    and how many runs shared it (``train`` tells its runs in ``RUNS_AT_ONCE``)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        models = [
            line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")
        ]
        name = f"{models[0] if models else platform.processor() or 'CPU'}, {os.cpu_count()} cores"
    runs = int(os.environ.get(RUNS_AT_ONCE, "1"))
    return f"{name}, shared by {runs} runs at once" if runs > 1 else name


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
