"""What defines a training run: :class:`TrainConfig`, its LR schedule, seeding and AMP dtype.

Taught in chapter 1.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint).

    ``batch_size`` is the global batch: under torchrun each of the N ranks trains on
    ``batch_size / N`` of it.

    ``progressive``: progressive learning (Restormer, chapter 6), a tuple of phases
    ``(first_step, patch_size, batch_size)``, the first at step 0: from ``first_step`` on, each
    step trains on ``batch_size`` patches of ``patch_size`` pixels. The loader still reads
    ``batch_size`` (the largest batch of the schedule) patches of the dataset's size per step
    and the Trainer keeps the first ones, cut to the phase's size
    (:func:`restorelab.train.sampling.progressive_batch`): the data of step s still depends on
    the seed and s only, so a run resumes exactly across the switches.
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # sgd only
    scheduler: str = "cosine"  # constant | cosine | multistep | plateau
    milestones: tuple[int, ...] = ()  # multistep: steps where the LR is multiplied by gamma
    gamma: float = 0.5  # multistep and plateau: the LR factor of each cut
    patience: int = 3  # plateau: validations without progress before the LR is cut
    warmup_steps: int = 0
    min_lr: float = 1e-7  # cosine floor
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode; "reduce-overhead": CUDA graphs
    sampler: str = "loader"  # loader (a DataLoader, one patch per index) | device (DevicePatches)
    cudnn_benchmark: bool = False  # let cuDNN time its algorithms for the fixed patch shapes
    val_every: int = 0  # 0: validate only at the end
    checkpoint_every: int = 0  # also write last.pt every N steps (always: before validating)
    log_every: int = 10
    num_workers: int = 0
    prefetch: int = 2  # batches loaded and copied to the device ahead (0: none)
    seed: int = 0
    device: str = "auto"
    monitor: str = "psnr_y"  # validation score that picks best.pt (metrics.LOWER_IS_BETTER: lowest)
    progress: bool = True
    tensorboard: bool = True
    comet: dict = field(default_factory=dict)  # {}: off; else Comet settings (see train.comet)
    progressive: tuple[tuple[int, int, int], ...] = ()  # (first step, patch, batch) phases
    extra: dict = field(default_factory=dict)  # free-form notes kept in the checkpoint

    def __post_init__(self) -> None:
        for name in ("val_every", "checkpoint_every"):  # 0: off; a negative N acted as -N
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: off), got {getattr(self, name)}")
        if self.sampler not in ("loader", "device"):
            raise ValueError(f"sampler must be loader or device, got {self.sampler!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(
                f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}"
            )
        if not self.progressive:
            return
        phases = tuple(tuple(int(v) for v in phase) for phase in self.progressive)
        self.progressive = phases
        starts = [start for start, _, _ in phases]
        if any(len(phase) != 3 for phase in phases) or starts[0] != 0:
            raise ValueError(
                f"progressive must be (first_step, patch_size, batch_size) phases, the first at "
                f"step 0, got {self.progressive}"
            )
        if starts != sorted(set(starts)) or any(p < 1 or b < 1 for _, p, b in phases):
            raise ValueError(
                f"progressive phases need increasing first steps and positive patch and batch "
                f"sizes, got {self.progressive}"
            )
        largest = max(b for _, _, b in phases)
        if self.batch_size != largest:
            raise ValueError(
                f"with progressive learning batch_size must be the largest batch of the "
                f"schedule ({largest}): the loader reads that many patches per step; "
                f"got batch_size={self.batch_size}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**values)


# settings a resumed run may change: they do not change what the checkpoint's weights mean
RESUMABLE_CHANGES = frozenset(
    {"steps", "val_every", "checkpoint_every", "log_every", "num_workers", "prefetch", "device",
     "progress", "tensorboard", "comet", "amp", "channels_last", "compile", "compile_mode",
     "cudnn_benchmark"}
)  # fmt: skip

# The --fast preset on CUDA (chapter 5): bf16, the device sampler, cuDNN autotuning, and
# torch.compile. Networks of many small kernels (Restormer, KBNet: launch-bound, see
# benchmarks/results/gpu_check.md) replay CUDA graphs; convolution stacks take channels_last.
# benchmarks/gpu.sh measures every one of these against fp32 eager.
LAUNCH_BOUND = frozenset({"restormer", "kbnet"})


def fast_settings(model: str | nn.Module, device: str | torch.device) -> dict:
    """The :class:`TrainConfig` fields of the ``--fast`` preset for ``model`` (a registry name
    such as "restormer", or the network) on ``device`` (chapter 5). On a CPU only the device
    sampler: compiling costs more than a short CPU run gains, and CPUs have no fast bf16
    training."""
    if torch.device(device).type != "cuda":
        return {"sampler": "device"}
    name = model if isinstance(model, str) else type(model).__name__.lower()
    launch_bound = name in LAUNCH_BOUND
    return {
        "sampler": "device", "amp": "bf16" if torch.cuda.is_bf16_supported() else "fp16",
        "cudnn_benchmark": True, "channels_last": not launch_bound, "compile": True,
        "compile_mode": "reduce-overhead" if launch_bound else "default",
    }  # fmt: skip


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning rate of ``step`` (0-based) divided by ``config.lr``.

    ``plateau`` is constant here: its cuts depend on the validations, and the Trainer applies
    them (:class:`Plateau`).
    """
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.scheduler in ("constant", "plateau"):
        return 1.0
    if config.scheduler == "multistep":
        return config.gamma ** sum(step >= m for m in config.milestones)
    if config.scheduler == "cosine":
        span = max(config.steps - config.warmup_steps, 1)
        progress = min((step - config.warmup_steps) / span, 1.0)
        floor = config.min_lr / config.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(
        f"scheduler must be constant, cosine, multistep or plateau, got {config.scheduler!r}"
    )


class Plateau:
    """ReduceLROnPlateau as a factor of the LR: multiply it by ``gamma`` after ``patience``
    validations in a row without a new best score (higher is better: the Trainer negates a
    lower-is-better score).

    Taught in chapter 8 (the project's upscaler: halve after 3 validations without progress).
    Unlike ``torch.optim.lr_scheduler.ReduceLROnPlateau`` it does not set the LR itself, so it
    composes with warm-up; its ``patience`` counts the validations that *trigger* a cut (torch
    cuts after ``patience + 1``). Its state (best, count, scale) goes into every checkpoint.
    """

    def __init__(self, gamma: float = 0.5, patience: int = 3) -> None:
        if not 0 < gamma < 1 or patience < 1:
            raise ValueError(
                f"plateau needs 0 < gamma < 1 and patience >= 1, got {gamma}, {patience}"
            )
        self.gamma, self.patience = gamma, patience
        self.best, self.bad, self.scale = -math.inf, 0, 1.0

    def step(self, score: float) -> bool:
        """Record a validation score; True when it cuts the LR."""
        if score > self.best:
            self.best, self.bad = float(score), 0
            return False
        self.bad += 1
        if self.bad < self.patience:
            return False
        self.scale *= self.gamma
        self.bad = 0
        return True

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad": self.bad, "scale": self.scale}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best, self.bad, self.scale = (
            float(state["best"]),
            int(state["bad"]),
            float(state["scale"]),
        )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``setting`` on ``device``, or None for full precision."""
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if setting in ("bf16", "fp16"):
        return torch.bfloat16 if setting == "bf16" else torch.float16
    raise ValueError(f"amp must be auto, off, bf16 or fp16, got {setting!r}")
