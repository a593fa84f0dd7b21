"""Experiments: a model name + a task + images -> a trained, saved, evaluated model.

Taught in chapter 1. The command line (``restorelab train`` / ``eval`` / ``demo``) and the
chapters call these functions, so a run started from a notebook and one started from a shell are
the same run. A checkpoint records the model name, preset and task, so ``load_checkpoint``
rebuilds everything from the file alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from restorelab import models
from restorelab.data import Labelled, RandomPatches
from restorelab.losses import PIXEL_LOSSES
from restorelab.tasks import TASKS, Inpainting, Task
from restorelab.train import TrainConfig, Trainer, read_checkpoint, seed_everything

CHECK_CROP = 64  # validation images are tried on crops this size before training starts


def make_task(name: str, **settings) -> Task:
    """A task by name (see ``restorelab.tasks.TASKS``) with its settings (e.g. ``scale=2``)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](**settings)


def task_spec(task: Task) -> dict:
    """What :func:`make_task` needs to rebuild ``task``."""
    name = next(key for key, cls in TASKS.items() if isinstance(task, cls))
    return {"name": name, **asdict(task)}


def mean_scores(scores: dict[str, list[float]]) -> dict[str, float]:
    """Per-image score lists -> their means."""
    return {key: sum(values) / len(values) for key, values in scores.items()}


def make_trainer(
    model_name: str,
    task: Task,
    train_images: Sequence[torch.Tensor],
    val_images: Sequence[torch.Tensor],
    config: TrainConfig,
    out_dir: str | Path | None,
    patch_size: int = 48,
    loss: str = "l2",
    preset: str = "paper",
    **model_kwargs,
) -> Trainer:
    """A :class:`Trainer` for ``model_name`` on ``task``, validated on ``val_images``.

    Before its first step the Trainer runs the validation on a corner crop of each validation
    image, so a bad image stops the run at once rather than at the first validation.
    """
    if not val_images:
        raise ValueError("no validation images: pass at least one")
    model_kwargs.setdefault("in_channels", task.model_channels)
    model_kwargs.setdefault("out_channels", task.model_channels)
    seed_everything(config.seed)  # the initial weights depend on the seed only
    model = models.build(model_name, preset, **model_kwargs)
    patches = RandomPatches(train_images, patch_size, seed=config.seed)
    config.monitor = task.monitor
    config.extra = {
        "model": model_name,
        "preset": preset,
        "model_kwargs": model_kwargs,
        "task": task_spec(task),
        "loss": loss,
        "patch_size": patch_size,
    }

    def validate(net: nn.Module) -> dict[str, float]:
        return mean_scores(task.evaluate(net, val_images))

    def check(net: nn.Module) -> None:
        task.evaluate(net, [image[..., :CHECK_CROP, :CHECK_CROP] for image in val_images])

    return Trainer(
        model, patches, PIXEL_LOSSES[loss], config, task.make_pair, validate, out_dir, check=check
    )


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, Task]:
    """Rebuild (model, task) from a Trainer checkpoint, with the checkpoint's weights loaded."""
    state = read_checkpoint(path, device)
    extra = state.get("config", {}).get("extra", {}) if isinstance(state, dict) else {}
    if "model" not in extra:
        raise ValueError(f"{path}: not a restorelab training checkpoint (no model name inside)")
    spec = dict(extra["task"])
    try:
        task = make_task(spec.pop("name"), **spec)
    except (KeyError, TypeError, ValueError) as error:  # e.g. a task of scale 0
        raise ValueError(f"{path}: the task it names cannot be made ({error})") from error
    model = models.build(extra["model"], extra["preset"], **extra["model_kwargs"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:  # one line per mismatched tensor: keep the first
        problems = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
        raise ValueError(
            f"{path}: its weights do not fit the {extra['model']} {extra['preset']} "
            f"{extra['model_kwargs']} it names ({problems[0] if problems else error}{more})"
        ) from error
    return model.to(device).eval(), task


def results_table(rows: dict[str, dict[str, float]], title: str = "") -> str:
    """A Markdown table: one row per method, one column per metric."""
    metrics = list(next(iter(rows.values())))
    lines = [f"**{title}**", ""] if title else []
    lines.append("| method | " + " | ".join(metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in metrics) + " |")
    return "\n".join(lines)


def make_inpainting_trainer(
    task: Inpainting,
    images: Dataset,
    classes: Sequence[int],
    val_images: Sequence[torch.Tensor],
    val_classes: Sequence[int],
    config: TrainConfig,
    out_dir: str | Path | None,
    loss: str = "l1",
    **model_kwargs,
) -> Trainer:
    """A :class:`Trainer` of the class-conditioned U-Net inpainter (chapter 8).

    ``images``: a dataset of clean images (e.g. :class:`restorelab.data.ArrowImages`);
    ``classes``: one class per image (all 0 for the baseline, the clusters, or the true
    classes), the same kind for ``val_classes``. The initial weights depend on
    ``config.seed`` only, like the data and the damage of every step: two runs with the same seed
    and other classes differ in nothing else (paired runs).
    """
    seed_everything(config.seed)
    model = models.build("unet_inpainter", **model_kwargs)
    config.monitor = task.monitor
    config.extra = {"model": "unet_inpainter", "model_kwargs": model_kwargs, "loss": loss,
                    "inpainting": asdict(task)}  # fmt: skip

    damage = task.fixed_damage(val_images)  # drawn once: the same for every validation

    def validate(net: nn.Module) -> dict[str, float]:
        return mean_scores(task.evaluate(net, val_images, val_classes, damage=damage))

    return Trainer(model, Labelled(images, classes, config.seed), PIXEL_LOSSES[loss], config, task.make_pair,
                   validate, out_dir)  # fmt: skip
