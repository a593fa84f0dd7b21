"""What the demo does, without Gradio: tasks, models, one restoration, metrics, zoomed crops.

Taught in the closing part of chapter 8 (the interactive demo). Every function here takes and
returns tensors, arrays and strings, so the tests call them directly; :mod:`restorelab.gui.app`
only wires them to widgets; what the page accepts is checked in :mod:`restorelab.gui.inputs`.
Images are float tensors (3, H, W) in [0, 1]. A restorer is chosen per task (:func:`model_choices`): the task's reference
checkpoint (:mod:`restorelab.pretrained`) where one ships, a classical baseline (named as such)
where none does, or a checkpoint file given to ``restorelab gui --checkpoint`` (loaded with
``weights_only=True``: a checkpoint cannot run code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorelab import color, degrade, metrics, pretrained
from restorelab.gui.inputs import (
    SAMPLES,
    DemoError,
    check_size,
    input_image,
    mask_from_layers,
    random_mask,
    read_upload,
)
from restorelab.infer import predict
from restorelab.io import to_uint8
from restorelab.tasks import Denoising, JPEGArtifacts, SuperResolution, Task

TILE, OVERLAP = 512, 32  # tiled inference above this side (restorelab.infer.predict)
DEFAULT, BASELINE = "default", "baseline"  # the two model choices every task has


@dataclass(frozen=True)
class DemoTask:
    """One task of the demo: its label, its reference checkpoint (if any) and its baseline."""

    label: str
    reference: str | None  # restorelab.pretrained name, None where no trained default ships
    baseline: str  # what the classical baseline is, as the page names it
    y_metrics: bool  # PSNR/SSIM on the Y channel (BT.601 studio), as the chapter that teaches it


TASKS: dict[str, DemoTask] = {
    "sr": DemoTask("super-resolution, x2 (chapters 1, 4)", "srcnn-x2", "bicubic upsampling", True),
    "denoise": DemoTask("Gaussian denoising, sigma 25 (chapter 3)", "dncnn-s25",
                        "non-local means (scikit-image)", False),
    "jpeg": DemoTask("JPEG artefacts, quality 10 (chapter 2)", "arcnn-q10",
                     "none: the JPEG itself", True),
    "inpaint": DemoTask("inpainting (chapter 8)", None,
                        "biharmonic inpainting (scikit-image)", False),
    "descan": DemoTask("descanning (chapter 9)", None,
                       "none: the scan itself (the table's 'scan (no model)' row)", False),
}  # fmt: skip
SIGMA, QUALITY = 25.0, 10
# the restorelab.tasks class a checkpoint of each demo task was trained with (where one exists)
TASK_OF_CHECKPOINT = {"sr": SuperResolution, "denoise": Denoising, "jpeg": JPEGArtifacts}


@dataclass
class Restorer:
    """A model (or a baseline) ready for one task of the demo.

    ``run``: degraded (3, h, w) -> restored (3, H, W) in [0, 1]. ``scale``: output side / input
    side (super-resolution). ``name``: how the page labels it; ``trained``: False for baselines.
    """

    name: str
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    trained: bool
    scale: int = 1
    quality: int = QUALITY
    sigma: float = SIGMA


def model_choices(task: str, checkpoints: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(label, value) pairs of the restorers the page offers for ``task``.

    The default comes first (the reference checkpoint, or the baseline where none ships), then
    the other reference checkpoints of the same task, the baseline, and the given checkpoints.
    """
    spec = _task(task)
    if spec.reference:
        default = f"default: {spec.reference} (reference checkpoint)"
    else:
        default = "default: classical baseline (no trained model ships)"
    choices = [(default, DEFAULT)]
    for name in pretrained.available():
        reference = pretrained.REFERENCES[name].task
        if name != spec.reference and reference["name"] == task:
            scale = f", x{reference['scale']}" if "scale" in reference else ""
            choices.append((f"{name} (reference checkpoint{scale})", name))
    choices.append((f"classical baseline: {spec.baseline}", BASELINE))
    choices += [(f"checkpoint: {Path(path).name}", str(path)) for path in checkpoints]
    return choices


def task_note(task: str) -> str:
    """One line for the page: what the default restorer of ``task`` is, honestly."""
    spec = _task(task)
    if spec.reference:
        return f"**{spec.label}**: default model `{spec.reference}`, a reference checkpoint of restorelab."
    return (f"**{spec.label}**: restorelab ships no trained model for this task; the default is "
            f"a classical baseline ({spec.baseline}), not a network. Train one in the chapter "
            "and pass it with `restorelab gui --checkpoint`.")  # fmt: skip


def _task(task: str) -> DemoTask:
    if task not in TASKS:
        raise DemoError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    return TASKS[task]


def load_restorer(
    task: str,
    choice: str,
    device: str = "cpu",
    self_ensemble: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Restorer:
    """The :class:`Restorer` of ``choice`` (see :func:`model_choices`) for ``task``.

    ``self_ensemble``: a trained model's output is the mean over the 8 flips and rotations of
    its input (:func:`restorelab.infer.predict`; 8 times the work). Baselines ignore it.
    ``progress(done, total)``: called after each pass of a trained model (a tile, a turn)."""
    spec = _task(task)
    if choice == BASELINE or (choice == DEFAULT and spec.reference is None):
        return _baseline(task)
    name = spec.reference if choice == DEFAULT else choice
    model, trained_for = _load_model(name, device)
    expected = TASK_OF_CHECKPOINT.get(task)
    if trained_for is not None and not isinstance(trained_for, expected or ()):
        raise DemoError(f"{Path(name).name}: trained for {type(trained_for).__name__}, not for "
                        f"{spec.label}; pick that task")  # fmt: skip
    label = Path(name).name + (" with self-ensemble (x8)" if self_ensemble else "")
    return _model_restorer(task, label, model, trained_for, self_ensemble, progress)


@lru_cache(maxsize=8)
def _load_model(name: str, device: str) -> tuple[nn.Module, Task | None]:
    """A reference checkpoint or a Trainer checkpoint file, with the task it was trained for."""
    if name in pretrained.REFERENCES:
        return pretrained.load(name, device), pretrained.task(name)
    from restorelab.experiment import load_checkpoint
    from restorelab.train import read_checkpoint

    path = Path(name)
    if not path.is_file():
        raise DemoError(f"{path}: no such checkpoint file")
    state = read_checkpoint(path, device)
    extra = state.get("config", {}).get("extra", {}) if isinstance(state, dict) else {}
    task_name = extra.get("task", {}).get("name")
    if task_name in TASK_OF_CHECKPOINT:
        return load_checkpoint(path, device)
    if "model" not in extra:  # inpainting and descanning runs: the model alone
        raise DemoError(f"{path.name}: not a restorelab training checkpoint (no model name in it)")
    from restorelab import models

    model = models.build(
        extra["model"], extra.get("preset", "paper"), **extra.get("model_kwargs", {})
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:  # one line per mismatched tensor: keep the first
        first = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), "")
        raise DemoError(f"{path.name}: its weights do not fit the {extra['model']} it names "
                        f"({first})") from None  # fmt: skip
    return model.to(device).eval(), None


def _model_restorer(task: str, name: str, model: nn.Module, trained_for: Task | None,
                    self_ensemble: bool, progress: Callable[[int, int], None] | None
                    ) -> Restorer:  # fmt: skip
    tiles = {"tile": TILE, "overlap": OVERLAP, "self_ensemble": self_ensemble,
             "progress": progress}  # fmt: skip
    if task == "sr":
        return Restorer(name, lambda lr, _: trained_for.restore(model, lr, **tiles), True,
                        scale=trained_for.scale)  # fmt: skip
    if task == "inpaint":

        def inpaint(damaged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            out = predict(model, torch.cat([damaged, mask]), **tiles).clamp(0, 1)
            return damaged * (1 - mask) + out * mask

        return Restorer(name, inpaint, True)
    one_channel = getattr(trained_for, "model_channels", 3) == 1
    if task == "jpeg" and one_channel:  # restore Y (studio range), keep the JPEG's chroma

        def restore_y(x: torch.Tensor, _) -> torch.Tensor:
            ycbcr = color.rgb_to_ycbcr(x)
            y = predict(model, ycbcr[:1], **tiles).clamp(0, 1)
            return color.ycbcr_to_rgb(torch.cat([y, ycbcr[1:]])).clamp(0, 1)

        quality = getattr(trained_for, "quality", QUALITY)
        return Restorer(name, restore_y, True, quality=quality)
    sigma = getattr(trained_for, "sigma", SIGMA)
    if one_channel:  # a grey denoiser: each colour channel on its own

        def per_channel(x: torch.Tensor, _) -> torch.Tensor:
            return predict(model, x[:, None], **tiles)[:, 0].clamp(0, 1)

        return Restorer(name, per_channel, True, sigma=sigma)

    def whole(x: torch.Tensor, _) -> torch.Tensor:
        return predict(model, x[None], **tiles)[0].clamp(0, 1)

    return Restorer(name, whole, True, sigma=sigma)


def _baseline(task: str) -> Restorer:
    runners = {"sr": _bicubic_x2, "denoise": _nl_means, "jpeg": _unchanged,
               "inpaint": _biharmonic, "descan": _unchanged}  # fmt: skip
    name = f"baseline: {TASKS[task].baseline}"
    return Restorer(name, runners[task], False, scale=2 if task == "sr" else 1)


def _bicubic_x2(lr: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
    return degrade.bicubic_resize(lr, 2).clamp(0, 1)


def _nl_means(noisy: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
    from restorelab.classic import nl_means_denoise

    return nl_means_denoise(noisy, SIGMA)


def _unchanged(image: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
    return image.clamp(0, 1)


def _biharmonic(damaged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    from skimage.restoration import inpaint_biharmonic

    image = damaged.permute(1, 2, 0).double().numpy()
    out = inpaint_biharmonic(image, mask[0].numpy() > 0, channel_axis=-1)
    return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)


def damage(task: str, clean: torch.Tensor, restorer: Restorer, seed: int = 0,
           mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Degrade a clean image as ``task`` does -> (degraded input, reference at output size).

    Seeded: one seed gives one noise, one mask, one scan. ``mask``: the inpainting holes
    (1, H, W), random when None.
    """
    _task(task)
    generator = degrade.make_generator(seed)
    if task == "sr":
        sr = SuperResolution(scale=restorer.scale)
        hr = sr.crop(clean)
        return sr.degrade(hr), hr
    if task == "denoise":
        return degrade.add_gaussian_noise(clean, restorer.sigma, generator), clean
    if task == "jpeg":
        return degrade.jpeg(clean[None], restorer.quality)[0], clean
    if task == "inpaint":
        mask = random_mask(tuple(clean.shape[-2:]), seed) if mask is None else mask
        return clean * (1 - mask), clean
    return degrade.scan_damage(clean[None], generator)[0], clean


@dataclass
class Restoration:
    """What one run of the demo shows: images (3, H, W) in [0, 1], metrics, how it was made."""

    degraded: torch.Tensor
    output: torch.Tensor
    reference: torch.Tensor | None
    method: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # row -> metric -> value


def restore(task: str, image: torch.Tensor, restorer: Restorer, degrade_first: bool = True,
            seed: int = 0, mask: torch.Tensor | None = None,
            reference: torch.Tensor | None = None) -> Restoration:  # fmt: skip
    """Restore ``image`` (3, H, W) for ``task`` with ``restorer``.

    ``degrade_first``: the image is clean: degrade it (:func:`damage`) and score against it.
    Otherwise the image is already damaged; ``reference`` (the clean image at the output size),
    when given, is scored against. Inpainting needs ``mask`` for an already damaged image.
    """
    check_size(image.shape[-1], image.shape[-2])
    if task == "inpaint" and mask is None:
        if not degrade_first:
            raise DemoError("an already damaged image needs its mask: draw the holes on it")
        mask = random_mask(tuple(image.shape[-2:]), seed)
    if degrade_first:
        degraded, reference = damage(task, image, restorer, seed, mask)
    else:
        degraded = image
    output = restorer.run(degraded, mask)
    result = Restoration(degraded.clamp(0, 1), output, reference, restorer.name)
    if reference is not None:
        if reference.shape != output.shape:
            raise DemoError(f"the reference is {_size(reference)} but the output {_size(output)}: "
                            "give the clean image at the output's size")  # fmt: skip
        result.metrics = score(task, output, degraded, reference, restorer.scale)
    return result


def _size(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def score(task: str, output: torch.Tensor, degraded: torch.Tensor, reference: torch.Tensor,
          scale: int = 1) -> dict[str, dict[str, float]]:  # fmt: skip
    """Metrics of the output and of the input (bicubic-enlarged for SR) against ``reference``.

    PSNR/SSIM on the Y channel with ``scale`` pixels shaved for SR and JPEG (the chapters'
    convention), on RGB otherwise; Y-MAE (full-range Y, 8-bit levels) for every task.
    """
    y = _task(task).y_metrics
    shave = scale if task == "sr" else 0
    baseline = degrade.bicubic_resize(degraded, scale) if scale > 1 else degraded
    rows = {}
    for row, image in (("input" if scale == 1 else "bicubic", baseline), ("output", output)):
        image = image.clamp(0, 1)
        rows[row] = {
            "PSNR (Y)" if y else "PSNR (RGB)": metrics.psnr(image, reference, shave, y_channel=y),
            "SSIM (Y)" if y else "SSIM (RGB)": metrics.ssim(image, reference, shave, y_channel=y),
            "Y-MAE": metrics.y_mae(image, reference),
        }
    return rows


def metrics_markdown(result: Restoration) -> str:
    """The metrics as a Markdown table, or a line saying why there are none."""
    if not result.metrics:
        return (
            "No reference image, so no metrics (tick *degrade it first*, or give the clean image)."
        )
    names = list(next(iter(result.metrics.values())))
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row, values in result.metrics.items():
        cells = " | ".join(f"{values[name]:.4f}" if "SSIM" in name else f"{values[name]:.2f}"
                           for name in names)  # fmt: skip
        lines.append(f"| {row} | {cells} |")
    return (
        "\n".join(lines)
        + "\n\nPSNR in dB (higher is better); Y-MAE in 8-bit levels (lower is better)."
    )


def zoom(images: Sequence[torch.Tensor], centre: tuple[float, float] = (0.5, 0.5),
         fraction: float = 0.25, size: int = 256) -> list[np.ndarray]:  # fmt: skip
    """The same region of each image, enlarged to ``size`` pixels wide with nearest neighbours.

    ``centre``: (x, y) as fractions of the width and height; ``fraction``: the region's side as
    a fraction of the shorter image side. Images of different sizes (an SR input and output)
    show the same part of the scene. Returns uint8 (size', size, 3) arrays.
    """
    if not 0 < fraction <= 1:
        raise DemoError(f"the zoom window must be a fraction in (0, 1], got {fraction}")
    crops = []
    for image in images:
        h, w = image.shape[-2:]
        side = max(int(round(fraction * min(h, w))), 1)
        left = min(max(int(round(centre[0] * w - side / 2)), 0), w - side)
        top = min(max(int(round(centre[1] * h - side / 2)), 0), h - side)
        crop = image[None, :, top : top + side, left : left + side]
        crops.append(to_uint8(F.interpolate(crop, size=(size, size), mode="nearest")[0]))
    return crops


@dataclass
class Request:
    """One click on *Restore*: what the page's widgets hold, as plain values.

    ``upload`` (a file path) wins over ``sample``. ``mask_layers``: the editor's drawn layers
    (RGBA arrays) for a drawn inpainting mask; None draws a random one. ``reference``: the path
    of the clean image for an input that is already damaged (metrics only). ``self_ensemble``:
    see :func:`load_restorer`.
    """

    task: str
    choice: str = DEFAULT
    sample: str | None = SAMPLES[0]
    upload: str | None = None
    degrade_first: bool = True
    mask_layers: Sequence[np.ndarray] | None = None
    seed: int = 0
    reference: str | None = None
    self_ensemble: bool = False


def handle(request: Request, checkpoints: Sequence[str] = (), device: str = "cpu",
           progress: Callable[[int, int], None] | None = None
           ) -> tuple[str, Restoration | None]:  # fmt: skip
    """Run ``request``: (a Markdown status line, the result or None). Never raises.
    ``progress``: see :func:`load_restorer` (the page's progress bar).

    Only the restorers :func:`model_choices` offers are run (a client of the page's API cannot
    name another file on the server). Refusals say what was wrong; an unexpected error is shown
    as one line, never as a traceback.
    """
    try:
        allowed = [value for _, value in model_choices(request.task, checkpoints)]
        if request.choice not in allowed:
            raise DemoError(
                f"{request.choice!r} is not a model of this task; choose one of the list"
            )
        image = input_image(request.sample, request.upload)
        restorer = load_restorer(request.task, request.choice, device, request.self_ensemble,
                                 progress)  # fmt: skip
        mask = None
        if request.task == "inpaint" and request.mask_layers is not None:
            mask = mask_from_layers(request.mask_layers, tuple(image.shape[-2:]))
        reference = None
        if not request.degrade_first and request.reference:
            reference = read_upload(request.reference)
        result = restore(request.task, image, restorer, request.degrade_first, request.seed,
                         mask, reference)  # fmt: skip
    except (DemoError, ValueError, KeyError, OSError) as error:  # the input's fault
        return f"**Refused:** {_one_line(error)}", None
    except Exception as error:  # a bug: still one line in the page, never a traceback
        return f"**Error:** {type(error).__name__}: {_one_line(error)}", None
    size = f"{_size(result.degraded)} -> {_size(result.output)}"
    kind = "a trained model" if restorer.trained else "a classical baseline, not a network"
    unused = request.self_ensemble and not restorer.trained
    note = " Self-ensemble is for trained models: not used." if unused else ""
    return f"Restored with **{result.method}** ({kind}), {size} pixels.{note}", result


def _one_line(error: BaseException) -> str:
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split()) or type(error).__name__
