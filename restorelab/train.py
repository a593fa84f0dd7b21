"""The Trainer every chapter uses.

Taught in chapter 1. One loop for every model of the course:

* device auto-selection; AMP on CUDA (bf16 where supported, else fp16 with a gradient scaler);
  optional channels_last and torch.compile;
* optimizer and LR schedule from a :class:`TrainConfig`;
* batches built on the device: the dataset yields clean patches, a background
  :class:`~restorelab.data.Prefetcher` copies the next ones to the device while this step runs,
  and ``make_pair(batch, generator)`` degrades them in one batched call (see
  :mod:`restorelab.tasks`);
* validation every ``val_every`` steps; ``best.pt`` and ``last.pt`` written atomically;
* exact resume: ``fit(resume=True)`` continues from ``last.pt`` as if never interrupted (model,
  optimizer, schedule, scaler, RNG state, step; the data of step ``s`` depends only on the seed
  and ``s``, see :mod:`restorelab.data.datasets`);
* a progress bar, ``log.csv`` and TensorBoard logs.
"""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from restorelab.data.prefetch import Prefetcher, map_tensors
from restorelab.device import pick_device

Batch = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]
MakePair = Callable[[Batch, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
Validate = Callable[[nn.Module], dict[str, float]]


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # sgd only
    scheduler: str = "cosine"  # constant | cosine | multistep
    milestones: tuple[int, ...] = ()  # multistep: steps where the LR is multiplied by gamma
    gamma: float = 0.5
    warmup_steps: int = 0
    min_lr: float = 1e-7  # cosine floor
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    val_every: int = 0  # 0: validate only at the end
    checkpoint_every: int = 0  # write last.pt every N steps; 0: at each validation
    log_every: int = 10
    num_workers: int = 0
    prefetch: int = 2  # batches loaded and copied to the device ahead (0: none)
    seed: int = 0
    device: str = "auto"
    monitor: str = "psnr_y"  # validation metric that picks best.pt (higher is better)
    progress: bool = True
    tensorboard: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes kept in the checkpoint

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**values)


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


class StepSampler(Sampler[int]):
    """Dataset indices for the sample positions ``start * batch .. steps * batch``.

    While the dataset is long enough, position p reads index p (random-patch datasets draw a
    fresh sample per index). Beyond that, each epoch is a permutation seeded by (seed, epoch).
    So the indices of any step depend only on the seed and the step: resumable, and identical
    with or without workers.
    """

    def __init__(self, dataset_length: int, start: int, stop: int, seed: int) -> None:
        self.length, self.start, self.stop, self.seed = dataset_length, start, stop, seed
        self._perms: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.stop - self.start

    def _index(self, position: int) -> int:
        if self.stop <= self.length:
            return position
        epoch, offset = divmod(position, self.length)
        if epoch not in self._perms:
            self._perms = {
                epoch: torch.randperm(self.length, generator=_generator(self.seed, epoch))
            }
        return int(self._perms[epoch][offset])

    def __iter__(self) -> Iterator[int]:
        return (self._index(p) for p in range(self.start, self.stop))


def _generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed * 1_000_003 + step)


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _on(batch: Batch, device: torch.device) -> Batch:
    return map_tensors(batch, lambda t: t.to(device))


class Trainer:
    """Train ``model`` on ``train_set`` with ``loss_fn``; see the module docstring.

    ``train_set``: a dataset whose item ``i`` depends only on its seed and ``i`` (all datasets of
    :mod:`restorelab.data` are). ``make_pair``: turns a device batch into (input, target); when
    None, the dataset must yield ``(input, target)`` itself. ``validate``: model -> metrics dict
    (run in eval mode, without gradients). ``out_dir``: where checkpoints and logs go (None: keep
    nothing on disk).
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        config: TrainConfig | None = None,
        make_pair: MakePair | None = None,
        validate: Validate | None = None,
        out_dir: str | Path | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        cfg = self.config
        self.device = pick_device(cfg.device)
        seed_everything(cfg.seed)
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.train_set, self.loss_fn = train_set, loss_fn
        self.make_pair, self.validate = make_pair, validate
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.amp_dtype = amp_dtype(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.optimizer = self._build_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.best: float = -math.inf
        self.history: list[dict[str, float]] = []
        self._writer = None

    # ----------------------------------------------------------------- set-up
    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                params, cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        raise ValueError(f"optimizer must be adam, adamw or sgd, got {cfg.optimizer!r}")

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.scheduler == "constant":
            return 1.0
        if cfg.scheduler == "multistep":
            return cfg.gamma ** sum(step >= m for m in cfg.milestones)
        if cfg.scheduler == "cosine":
            span = max(cfg.steps - cfg.warmup_steps, 1)
            progress = min((step - cfg.warmup_steps) / span, 1.0)
            floor = cfg.min_lr / cfg.lr
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        raise ValueError(f"scheduler must be constant, cosine or multistep, got {cfg.scheduler!r}")

    def _loader(self) -> DataLoader:
        cfg = self.config
        sampler = StepSampler(
            len(self.train_set), self.step * cfg.batch_size, cfg.steps * cfg.batch_size, cfg.seed
        )
        return DataLoader(
            self.train_set,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "rng": rng,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def save(self, name: str) -> Path | None:
        if self.out_dir is None:
            return None
        path = self.out_dir / name
        save_atomic(self.state_dict(), path)
        return path

    def resume(self, path: str | Path | None = None) -> bool:
        """Load ``path`` (default ``out_dir/last.pt``); False when there is nothing to resume."""
        path = Path(path) if path else (self.out_dir / "last.pt" if self.out_dir else None)
        if path is None or not path.exists():
            return False
        self.load_state_dict(read_checkpoint(path, self.device))
        self._rewrite_csv()
        return True

    # ------------------------------------------------------------------ logs
    def _log(self, row: dict[str, float]) -> None:
        self.history.append(row)
        if self.out_dir is None:
            return
        path = self.out_dir / "log.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", "kind", "name", "value"])
            if new:
                writer.writeheader()
            step = row["step"]
            for name, value in row.items():
                if name not in ("step", "kind"):
                    writer.writerow(
                        {"step": step, "kind": row["kind"], "name": name, "value": value}
                    )
        if self.config.tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(self.out_dir / "tensorboard")
            for name, value in row.items():
                if name not in ("step", "kind"):
                    self._writer.add_scalar(f"{row['kind']}/{name}", value, step)

    def _rewrite_csv(self) -> None:
        """After a resume, the CSV holds exactly the history of the checkpoint."""
        if self.out_dir is None:
            return
        (self.out_dir / "log.csv").unlink(missing_ok=True)
        history, self.history = self.history, []
        tensorboard, self.config.tensorboard = self.config.tensorboard, False
        for row in history:
            self._log(row)
        self.config.tensorboard = tensorboard

    # ----------------------------------------------------------------- train
    def _run_validation(self) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            results = self.validate(self.model)
        self.model.train(was_training)
        self._log({"step": self.step, "kind": "val", **results})
        score = results.get(self.config.monitor)
        if score is not None and score > self.best:
            self.best = score
            self.save("best.pt")
        return results

    def train_step(self, batch: Batch) -> float:
        """One optimisation step on a device batch; returns the loss."""
        cfg = self.config
        if self.make_pair is not None:
            gen = _generator(cfg.seed, self.step, self.device)
            inputs, target = self.make_pair(batch, gen)
        else:
            inputs, target = batch
        if cfg.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            output = self.forward(inputs)
        loss = self.loss_fn(output.float(), target.float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return float(loss.detach())

    def fit(self, resume: bool = False, stop_at: int | None = None) -> list[dict[str, float]]:
        """Train until ``config.steps``; with ``resume=True`` continue from ``last.pt`` if present.

        ``stop_at``: leave after that step (saving ``last.pt``), e.g. to spread a long run over
        several Colab sessions; the schedule still spans ``config.steps``.
        Returns the history: one dict per logged training step and per validation.
        """
        cfg = self.config
        if resume:
            self.resume()
        self.model.train()
        progress = None
        if cfg.progress:
            from tqdm import tqdm

            progress = tqdm(
                total=cfg.steps, initial=self.step, desc="train", unit="step", mininterval=2.0
            )
        started, running = time.perf_counter(), []
        checkpoint_every = cfg.checkpoint_every or cfg.val_every
        batches = self._loader()
        if cfg.prefetch:
            batches = Prefetcher(batches, self.device, depth=cfg.prefetch)
        for batch in batches:
            running.append(self.train_step(batch if cfg.prefetch else _on(batch, self.device)))
            if progress is not None:
                progress.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                lr = self.scheduler.get_last_lr()[0]
                row = {
                    "step": self.step,
                    "kind": "train",
                    "loss": float(np.mean(running)),
                    "lr": lr,
                }
                row["seconds"] = time.perf_counter() - started
                self._log(row)
                running = []
                if progress is not None:
                    progress.set_postfix(loss=f"{row['loss']:.4g}")
            last = self.step == cfg.steps
            stop = self.step == stop_at
            if self.validate is not None and (
                last or (cfg.val_every and self.step % cfg.val_every == 0)
            ):
                results = self._run_validation()
                if progress is not None:
                    progress.set_postfix({k: f"{v:.4g}" for k, v in results.items()})
            if last or stop or (checkpoint_every and self.step % checkpoint_every == 0):
                self.save("last.pt")
            if stop:
                break
        if progress is not None:
            progress.close()
        if self._writer is not None:
            self._writer.flush()
        return self.history


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The dict saved by a Trainer (or any torch file); errors name the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(f"{path}: not a readable checkpoint ({error})") from error


def load_weights(model: nn.Module, path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Load the model weights of a Trainer checkpoint (or a bare state dict) into ``model``."""
    state = read_checkpoint(path, map_location)
    model.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
    return model
