"""The Trainer every chapter uses.

Taught in chapter 1 (several GPUs: the appendix). One loop for every model of the course:

* device auto-selection; AMP on CUDA (bf16 where supported, else fp16 with a gradient scaler);
  optional channels_last and torch.compile (what it compiled is kept beside ``last.pt`` and
  loaded on resume: :mod:`restorelab.train.compile_cache`);
* optimizer and LR schedule from a :class:`TrainConfig`;
* batches built on the device: the dataset yields clean patches, a background
  :class:`~restorelab.data.Prefetcher` copies the next ones to the device while this step runs,
  and ``make_pair(batch, generator)`` degrades them in one batched call (see
  :mod:`restorelab.tasks`);
* validation every ``val_every`` steps; ``last.pt`` written (atomically) before each
  validation, ``best.pt`` after it when the score improved;
* progressive learning (``TrainConfig.progressive``, chapter 6): patches grow and batches shrink
  at given steps;
* exact resume: ``fit(resume=True)`` continues from ``last.pt`` as if never interrupted (model,
  optimizer, schedule, scaler, RNG state, step; the data of step ``s`` depends only on the seed
  and ``s``, see :mod:`restorelab.train.sampling`); a folder holding a run is never overwritten
  by accident (see :func:`restorelab.train.checkpoint.open_run`);
* under ``torchrun``, DistributedDataParallel: each rank reads its shard of the global batch,
  the shards are gathered so that ``make_pair`` degrades exactly the batch one process would,
  and each rank trains on its part; rank 0 alone validates and writes files;
* a progress bar, ``log.csv`` (reproducible: a resumed run's is byte-identical to an
  uninterrupted run's) and TensorBoard logs (which also get the wall-clock ``seconds``); Comet
  (chapter 8) only when ``TrainConfig.comet`` asks for it;
* ``scheduler="plateau"`` (chapter 8): the LR is cut by ``gamma`` after ``patience``
  validations without a new best ``monitor`` score; the count is in the checkpoint;
* a step whose loss is NaN or infinite stops the run with :class:`TrainingDiverged` (naming
  the step and what to try) before anything of it is logged or saved;
* a pair's input may be a tuple of the network's arguments (the inpainter's image and class).
"""

from __future__ import annotations

import csv
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from restorelab import distributed
from restorelab.data.prefetch import Prefetcher, map_tensors
from restorelab.device import pick_device
from restorelab.metrics import LOWER_IS_BETTER
from restorelab.train.checkpoint import note, open_run, rng_state, save_atomic, set_rng_state
from restorelab.train.compile_cache import load_compiled, save_compiled
from restorelab.train.config import Plateau, TrainConfig, amp_dtype, lr_factor, seed_everything
from restorelab.train.sampling import (
    StepSampler,
    progressive_batch,
    progressive_phase,
    step_generator,
)

Batch = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]
MakePair = Callable[[Batch, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
Validate = Callable[[nn.Module], dict[str, float]]
CSV_FIELDS = ["step", "kind", "name", "value"]
UNLOGGED = ("step", "kind", "seconds")  # seconds: TensorBoard only, so log.csv is reproducible


class TrainingDiverged(ValueError):
    """A step's loss (any step metric named ``*loss*``; grad norms may be infinite on the steps
    an fp16 gradient scaler skips) is NaN or infinite: the run stops there, with one line naming
    the step and what to try; the weights of that step are not saved."""

    def __init__(self, step: int, losses: dict[str, float], config: TrainConfig) -> None:
        bad = ", ".join(f"{k} {v}" for k, v in losses.items() if not math.isfinite(v))
        bad = bad or "the loss of another rank"
        super().__init__(
            f"step {step}: {bad}: training diverged and stopped (this step is not saved); try "
            f"a lower --lr (now {config.lr:g}), fp32 (--amp off) or gradient clipping "
            "(--grad-clip 1)"
        )
        self.step = step


class Trainer:
    """Train ``model`` on ``train_set`` with ``loss_fn``; see the module docstring.

    ``train_set``: a dataset whose item ``i`` depends only on its seed and ``i`` (all datasets of
    :mod:`restorelab.data` are). ``make_pair``: turns a device batch into (input, target); when
    None, the dataset must yield ``(input, target)`` itself. ``validate``: model -> metrics dict
    (run in eval mode, without gradients). ``check``: run like ``validate`` once before the first
    step (e.g. validation on small crops), so bad validation data stops the run before it trains
    rather than at its first validation. ``out_dir``: where checkpoints and logs go (None: keep
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
        check: Callable[[nn.Module], object] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        cfg = self.config
        self.device = distributed.init(pick_device(cfg.device))
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if cfg.batch_size % self.world:
            raise ValueError(
                f"batch_size {cfg.batch_size} must be a multiple of the {self.world} ranks"
            )
        seed_everything(cfg.seed)
        if distributed.active() and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # batch norm over all ranks
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        network: nn.Module = self.model
        if distributed.active():  # under torchrun, also with one rank: the same code path
            ids = [self.device.index] if self.device.type == "cuda" else None
            network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.rank == 0:
                note(f"DistributedDataParallel: {self.world} rank(s), {distributed.backend()}, "
                     f"{cfg.batch_size // self.world} of the batch of {cfg.batch_size} each")  # fmt: skip
        if cfg.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        mode = None if cfg.compile_mode == "default" else cfg.compile_mode
        self.forward = torch.compile(network, mode=mode) if cfg.compile else network
        # CUDA graphs (compile modes reduce-overhead / max-autotune) reuse their output memory:
        # each step tells them that the last step's outputs are no longer read
        self._graphs = cfg.compile and self.device.type == "cuda" and mode in (
            "reduce-overhead", "max-autotune")  # fmt: skip
        self.train_set, self.loss_fn = train_set, loss_fn
        self.make_pair, self.validate, self.check = make_pair, validate, check
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.amp_dtype = amp_dtype(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.optimizer = make_optimizer(self.config, self.model.parameters())
        # ReduceLROnPlateau (chapter 8): its cuts multiply the per-step schedule
        self.plateau = Plateau(cfg.gamma, cfg.patience) if cfg.scheduler == "plateau" else None
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.direction = -1.0 if cfg.monitor in LOWER_IS_BETTER else 1.0  # +1: higher is better
        self.best: float = -self.direction * math.inf
        self.history: list[dict[str, float]] = []
        self.running: list[dict[str, float]] = []  # metrics of the steps since the last log row
        self._writer = None
        self._comet = None
        self._opened = False
        self._compile_saved = False  # compile_cache.bin written since this Trainer was made
        self._source = None  # the device sampler's images, held between fits of one run

    @property
    def writes(self) -> bool:
        """True when this process writes checkpoints and logs (rank 0 with an ``out_dir``)."""
        return self.out_dir is not None and self.rank == 0

    # ----------------------------------------------------------------- set-up
    def _lr_factor(self, step: int) -> float:
        scale = self.plateau.scale if self.plateau is not None else 1.0
        return lr_factor(self.config, step) * scale

    def _batches(self) -> Iterable[Batch]:
        """The batches of the steps from ``self.step`` on, on the device: from a DataLoader
        (prefetched on a side stream), or cut whole on the device (``sampler="device"``: every
        rank cuts the global batch, :meth:`pair` keeps its shard)."""
        cfg = self.config
        if cfg.sampler == "loader":
            batches = self._loader()
            if cfg.prefetch:
                return Prefetcher(batches, self.device, depth=cfg.prefetch)
            return (_on(batch, self.device) for batch in batches)
        if not hasattr(self.train_set, "on_device"):
            raise ValueError(
                f'sampler="device" needs a dataset that can cut its batches on the device '
                f"(RandomPatches, PairedPatches); {type(self.train_set).__name__} cannot: use "
                f'sampler="loader"'
            )
        if self._source is None:  # kept while a run stopped early (stop_at) may go on here
            self._source = self.train_set.on_device(self.device)
        source = self._source
        return (source.batch(step, cfg.batch_size) for step in range(self.step, cfg.steps))

    def _loader(self) -> DataLoader:
        cfg = self.config
        sampler = StepSampler(
            len(self.train_set), self.step * cfg.batch_size, cfg.steps * cfg.batch_size,
            cfg.seed, cfg.batch_size, self.rank, self.world,
        )  # fmt: skip
        return DataLoader(
            self.train_set,
            batch_size=cfg.batch_size // self.world,
            sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything a resume needs; only tensors, numbers, strings and containers of them."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "running": self.running,
            "rng": rng_state(),
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        self.running = [r if isinstance(r, dict) else {"loss": r} for r in state.get("running", [])]
        set_rng_state(state["rng"])
        steps_before = state["config"]["steps"]
        if steps_before != self.config.steps:
            self._follow_new_schedule(steps_before)

    def _follow_new_schedule(self, steps_before: int) -> None:
        """A resume with another ``steps``: the LR schedule now spans it; log what that does."""
        before, after = follow_schedule(self.optimizer, self.scheduler, self._lr_factor(self.step))
        if self.rank == 0:
            note(
                f"resuming at step {self.step} with --steps {self.config.steps} (the checkpoint "
                f"had {steps_before}): the {self.config.scheduler} LR schedule now spans "
                f"{self.config.steps} steps; the LR of step {self.step} goes from {before:.4g} "
                f"to {after:.4g}"
            )
        self.history.append({"step": self.step, "kind": "resume", "steps_before": float(steps_before),
                             "steps": float(self.config.steps), "lr_before": before, "lr": after})  # fmt: skip

    def save(self, name: str) -> Path | None:
        """Write ``out_dir/name`` atomically (rank 0 only); returns its path."""
        if not self.writes:
            return None
        path = self.out_dir / name
        save_atomic(self.state_dict(), path)
        return path

    def _open(self, resume: bool, overwrite: bool, require_run: bool) -> None:
        """Decide on rank 0 what this fit starts from; every rank loads the same state."""
        if self.out_dir is None:
            return
        out_dir, config = self.out_dir, self.config
        state, rewrite = distributed.agree(
            lambda: open_run(out_dir, config, resume, overwrite, require_run)
        )
        if state is not None:
            self.load_state_dict(state)
            if self.config.compile and not self._compile_saved:  # else this process built it
                load_compiled(out_dir)
        if rewrite and self.writes:
            self._rewrite_logs()

    # ------------------------------------------------------------------ logs
    def _log(self, row: dict) -> None:
        row = {k: v if k in ("step", "kind") else float(v) for k, v in row.items()}
        self.history.append(row)
        if self.writes:
            self._write_row(row)

    def _write_row(self, row: dict) -> None:
        path = self.out_dir / "log.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            if new:
                writer.writeheader()
            for name, value in row.items():
                if name not in UNLOGGED:
                    writer.writerow({"step": row["step"], "kind": row["kind"], "name": name,
                                     "value": value})  # fmt: skip
        if self.config.comet:
            if self._comet is None:
                from restorelab.train.comet import start_experiment

                self._comet = start_experiment(self.config, self.out_dir)
            metrics = {f"{row['kind']}_{k}": v for k, v in row.items() if k not in ("step", "kind")}
            self._comet.log_metrics(metrics, step=row["step"])
        if self.config.tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(self.out_dir / "tensorboard")
            for name, value in row.items():
                if name not in ("step", "kind"):
                    self._writer.add_scalar(f"{row['kind']}/{name}", value, row["step"])

    def _rewrite_logs(self) -> None:
        """After a resume, log.csv and TensorBoard hold exactly the checkpoint's history."""
        (self.out_dir / "log.csv").unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / "tensorboard", ignore_errors=True)
        for row in self.history:
            self._write_row(row)

    # ----------------------------------------------------------------- train
    def _evaluate(self, fn: Callable[[nn.Module], object]) -> object:
        """``fn(model)`` in eval mode without gradients, on rank 0; every rank gets the result."""

        network = self.evaluated_model()

        def run() -> object:
            network.eval()
            try:
                with torch.no_grad():
                    return fn(network)
            finally:
                network.train()

        return distributed.agree(run)

    def evaluated_model(self) -> nn.Module:
        """The network that validation and ``check`` see (the GAN trainer's EMA, if any)."""
        return self.model

    def _validation_due(self) -> bool:
        """True at a validation step whose validation is not in the history yet."""
        cfg = self.config
        due = self.step == cfg.steps or (cfg.val_every and self.step % cfg.val_every == 0)
        if self.validate is None or not due:
            return False
        for row in reversed(self.history):  # this step's rows are the last ones
            if row["step"] < self.step:
                break
            if row["kind"] == "val":
                return False
        return True

    def _run_validation(self) -> dict[str, float]:
        results = self._evaluate(self.validate)
        self._log({"step": self.step, "kind": "val", **results})
        score = results.get(self.config.monitor)
        if score is None:
            return results
        if self.plateau is not None and self.plateau.step(self.direction * score):
            follow_schedule(self.optimizer, self.scheduler, self._lr_factor(self.step))
        if self.direction * score > self.direction * self.best:
            self.best = float(score)
            self.save("best.pt")
        return results

    def _saves_now(self, stop_at: int | None) -> bool:
        """True when the step just taken ends with writing ``last.pt``."""
        cfg = self.config
        final = self.step in (cfg.steps, stop_at)
        every = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
        return bool(final or every or self._validation_due())

    def _read(self, unread: list[tuple[int, dict]], progress) -> None:
        """Read the metrics of ``unread`` steps with one wait for the device, average them over
        the ranks and keep them for the log; the first step with a NaN or infinite loss stops
        the run (:class:`TrainingDiverged`) before any later step is logged or saved."""
        values = [v for _, metrics in unread for v in metrics.values()]
        tensors = [v.float() for v in values if isinstance(v, torch.Tensor)]
        read = iter(torch.stack(tensors).tolist() if tensors else [])
        flat = [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values]
        averaged = iter(distributed.mean(flat))  # one all-reduce for every step read
        for step, metrics in unread:
            metrics = {name: next(averaged) for name in metrics}
            losses = {name: value for name, value in metrics.items() if "loss" in name}
            if not math.isfinite(sum(losses.values())):  # the same on every rank
                if progress is not None:
                    progress.close()
                raise TrainingDiverged(step, losses, self.config)
            self.running.append(metrics)

    def _end_of_step(self, stop_at: int | None) -> dict[str, float] | None:
        """Checkpoint, then validate (a validation that fails loses no step); None: no validation."""
        cfg = self.config
        final = self.step in (cfg.steps, stop_at)
        validate = self._validation_due()
        if self._saves_now(stop_at):
            self.save("last.pt")
            if not self._compile_saved:
                self._save_compiled()
        if not validate:
            return None
        results = self._run_validation()
        if final:
            self.save("last.pt")  # with this validation in it: resuming a finished run does nothing
        return results

    def _save_compiled(self) -> None:
        """Keep what torch.compile built beside ``last.pt`` (:mod:`compile_cache`)."""
        if self.config.compile and self.writes:
            save_compiled(self.out_dir)
        self._compile_saved = True

    def pair(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of this step from a device batch (this rank's shard of both)."""
        cfg = self.config
        # degrade (and cut, with progressive learning) the global batch as one process would;
        # the device sampler gives every rank the global batch already
        whole = cfg.sampler == "device"
        gathered = (
            self.world > 1 and not whole and (self.make_pair is not None or bool(cfg.progressive))
        )
        if gathered:
            batch = map_tensors(batch, distributed.gather_batch)
        if cfg.progressive:
            batch = progressive_batch(batch, cfg.progressive, self.step)
        if self.make_pair is not None:
            gen = step_generator(cfg.seed, self.step, self.device)
            inputs, target = self.make_pair(batch, gen)
        else:
            inputs, target = batch
        if self.world > 1 and (gathered or whole):  # inputs may be a tuple (image, classes)
            shard = lambda t: t.chunk(self.world)[self.rank]  # noqa: E731
            inputs, target = map_tensors(inputs, shard), map_tensors(target, shard)
        if cfg.channels_last:
            inputs = _channels_last(inputs)
        return inputs, target

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One optimisation step on a device batch (this rank's shard); returns this rank's
        loss as a 0-dim tensor on the device (reading it would make the CPU wait for the GPU:
        :meth:`fit` reads the losses of several steps at once)."""
        cfg = self.config
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()
        inputs, target = self.pair(batch)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            output = self.run(inputs)
        loss = self.loss_fn(output.float(), target.float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # DDP averages the gradients over the ranks here
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return loss.detach()

    def run(self, inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The network on a pair's input: a tensor, or a tuple of the network's arguments (the
        inpainter's image and class, chapter 8)."""
        return self.forward(*inputs) if isinstance(inputs, (tuple, list)) else self.forward(inputs)

    def step_metrics(self, batch: Batch) -> dict[str, float | torch.Tensor]:
        """One training step; what it logs (averaged over ``log_every`` steps): numbers or
        0-dim tensors of this rank (:meth:`fit` reads and averages them over the ranks)."""
        return {"loss": self.train_step(batch)}

    def learning_rates(self) -> dict[str, float]:
        """The learning rates a training log row records."""
        return {"lr": self.scheduler.get_last_lr()[0]}

    def fit(
        self,
        resume: bool = False,
        stop_at: int | None = None,
        overwrite: bool = False,
        require_run: bool = False,
    ) -> list[dict[str, float]]:
        """Train until ``config.steps``; returns the history (one dict per log row).

        The first ``fit`` of a Trainer with an ``out_dir`` opens the folder: ``resume=True``
        continues the run there (from step 0 when there is none; ``require_run=True`` makes that
        an error), ``overwrite=True`` deletes it, and with neither a folder holding a run is
        refused. Settings that contradict the checkpoint stop with an error naming them; a
        different ``steps`` is allowed (the LR schedule follows it, and a note says how).
        ``stop_at``: leave after that step (saving ``last.pt``), e.g. to spread a long run over
        several Colab sessions; the schedule still spans ``config.steps``. Calling ``fit``
        again on the same Trainer continues where it stopped.
        """
        cfg = self.config
        if not self._opened:
            self._open(resume, overwrite, require_run)
            self._opened = True
            if self.step and self._validation_due():  # killed while validating: do it again
                self._end_of_step(stop_at)
        if self.check is not None and self.step < cfg.steps:
            self._evaluate(self.check)
        self.model.train()
        progress = None
        if cfg.progress and self.rank == 0:
            from tqdm import tqdm

            progress = tqdm(
                total=cfg.steps, initial=self.step, desc="train", unit="step", mininterval=2.0
            )
        started = time.perf_counter()
        unread: list[tuple[int, dict]] = []  # (step, metrics) not yet read from the device
        for batch in self._batches():
            unread.append((self.step + 1, self.step_metrics(batch)))
            if progress is not None:
                progress.update(1)
            logs = self.step % cfg.log_every == 0 or self.step == cfg.steps
            if logs or self._saves_now(stop_at):  # nothing is logged or saved unread
                self._read(unread, progress)
                unread = []
            if logs:
                means = _means(self.running)
                seconds = time.perf_counter() - started
                phase = {}
                if cfg.progressive:  # the patch and batch of the step just taken
                    patch, size = progressive_phase(cfg.progressive, self.step - 1)
                    phase = {"patch": patch, "batch": size}
                self._log({"step": self.step, "kind": "train", **means, **self.learning_rates(), **phase,
                           "seconds": seconds})  # fmt: skip
                self.running = []
                if progress is not None:
                    progress.set_postfix({k: f"{v:.4g}" for k, v in means.items() if "loss" in k})
            results = self._end_of_step(stop_at)
            if progress is not None and results:
                progress.set_postfix({k: f"{v:.4g}" for k, v in results.items()})
            if self.step == stop_at:
                break
        if progress is not None:
            progress.close()
        if self.step >= cfg.steps:  # done: give the images' memory back (a stop_at keeps it)
            self._source = None
        self._save_compiled()  # with what later patch sizes compiled (progressive learning)
        if self._writer is not None:
            self._writer.flush()
        if self._comet is not None:
            self._comet.end()  # offline: writes the archive
            self._comet = None
        return self.history


def make_optimizer(
    config: TrainConfig, parameters: Iterable[nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over the trainable ``parameters``."""
    params = [p for p in parameters if p.requires_grad]
    # one fused kernel per step on CUDA instead of several per parameter tensor: models of many
    # small layers (Restormer, KBNet) are limited by kernel launches
    # (benchmarks/results/step_breakdown.md)
    adam = {"betas": config.betas, "weight_decay": config.weight_decay,
            "fused": True if params and params[0].is_cuda else None}  # fmt: skip
    if config.optimizer == "adam":
        return torch.optim.Adam(params, config.lr, **adam)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, config.lr, **adam)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(f"optimizer must be adam, adamw or sgd, got {config.optimizer!r}")


def follow_schedule(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR, factor: float
) -> tuple[float, float]:
    """Set the LR of every group to ``base * factor`` (a resume with another ``steps``);
    returns the first group's LR before and after."""
    before = scheduler.get_last_lr()[0]
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["lr"] = base * factor
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    return before, scheduler.get_last_lr()[0]


def _means(running: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over the steps that logged it (in order of first appearance)."""
    names = list(dict.fromkeys(name for row in running for name in row))
    return {name: float(np.mean([row[name] for row in running if name in row])) for name in names}


def _channels_last(inputs: torch.Tensor | tuple) -> torch.Tensor | tuple:
    """channels_last for the image input (the first one of a tuple of arguments)."""
    if isinstance(inputs, (tuple, list)):
        return (_channels_last(inputs[0]), *inputs[1:])
    return inputs.contiguous(memory_format=torch.channels_last)


def _on(batch: Batch, device: torch.device) -> Batch:
    return map_tensors(batch, lambda t: t.to(device))
