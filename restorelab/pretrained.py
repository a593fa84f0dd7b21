"""Reference checkpoints: trained models by name, each with its model card.

Taught in chapters 1-4, which show a reference model beside the one they train in QUICK mode.
``load("dncnn-s25")`` returns the network ready for evaluation (``eval()`` mode, on ``device``);
``info(name)`` returns its model card: the exact ``restorelab train`` command, the data, steps,
batch, wall time and hardware, the commit, and its evaluation table with the metric convention.

Weights are safetensors files (never pickles), stored in the package while each is at most 4 MB
(fp16 where that moves no reported PSNR by more than 0.01 dB), each checked on every load
against the ``sha256`` its model card records. A reference may instead name a
``url`` with its ``sha256``: it is downloaded once to ``~/.cache/restorelab/weights`` and
checked (then on every load too); offline, the error says which file is missing and where to put it.

The modern half (:data:`MODERN`, chapters 5-9: the descanning table, ESRGAN, the inpainter) is
trained by ``scripts/train_references.py`` on one GPU; its cards hold the scores measured there
and the targets met or missed. :func:`card` and :func:`summary` give a chapter its reference,
or an honest "not trained yet" until the GPU run has been published.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from restorelab import models
from restorelab.io import file_sha256, to_levels
from restorelab.tasks import TASKS, Task

WEIGHTS = Path(__file__).parent / "weights"
CACHE = Path.home() / ".cache" / "restorelab" / "weights"


@dataclass(frozen=True)
class Reference:
    """A reference model: how it is built, the task it solves, how it is trained and scored.

    ``task``: the settings :func:`restorelab.experiment.make_task` takes (with ``name``).
    ``train_args``: the ``restorelab train`` options of its recipe (steps are chosen by the
    training script and recorded in the card). ``benchmarks``: where its card scores it.
    """

    model: str
    task: dict
    train_args: tuple[str, ...]
    benchmarks: tuple[str, ...]
    preset: str = "paper"
    model_kwargs: dict = field(default_factory=dict)
    url: str | None = None
    sha256: str | None = None


REFERENCES: dict[str, Reference] = {
    "srcnn-x2": Reference(
        model="srcnn",
        task={"name": "sr", "scale": 2, "channels": "y", "pre_upsample": True},
        train_args=("--model", "srcnn", "--task", "sr", "--scale", "2", "--patch-size", "48",
                    "--batch-size", "128", "--lr", "1e-3", "--loss", "l2"),
        benchmarks=("Set5", "Set14"),
    ),
    "arcnn-q10": Reference(
        model="arcnn",
        task={"name": "jpeg", "quality": 10, "channels": "y"},
        train_args=("--model", "arcnn", "--task", "jpeg", "--quality", "10", "--patch-size", "48",
                    "--batch-size", "64", "--lr", "5e-4", "--loss", "l2"),
        benchmarks=("Classic5",),
    ),
    "dncnn-s25": Reference(
        model="dncnn",
        task={"name": "denoise", "sigma": 25.0, "sigma_range": None, "channels": "grey"},
        train_args=("--model", "dncnn", "--task", "denoise", "--sigma", "25", "--patch-size",
                    "40", "--batch-size", "128", "--lr", "1e-3", "--loss", "l2"),
        benchmarks=("Set12",),
    ),
    "msrresnet-x4": Reference(
        model="msrresnet",
        task={"name": "sr", "scale": 4, "channels": "rgb", "pre_upsample": False},
        train_args=("--model", "msrresnet", "--task", "sr", "--scale", "4", "--channels", "rgb",
                    "--no-pre-upsample", "--patch-size", "128", "--batch-size", "32",
                    "--lr", "3e-4", "--loss", "l1"),
        benchmarks=("Set5", "Set14"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class ModernReference:
    """A reference of chapters 5-9: trained and scored by ``scripts/train_references.py`` (the
    network is rebuilt from its card's ``model``: architecture, preset, arguments).

    ``shows``: what a chapter compares it with; ``target``: what its card is judged by."""

    chapter: int
    shows: str
    target: str


_DESCAN = "Y-MAE at most half the scans' on the held-out synthetic pages"
MODERN: dict[str, ModernReference] = {
    "descanning-dncnn": ModernReference(3, "the descanning table's DnCNN row", _DESCAN),
    "descanning-srresnet-x1": ModernReference(4, "the descanning table's SRResNet-style x1 row", _DESCAN),
    "descanning-kbnet": ModernReference(5, "the descanning table's KBNet row (competition preset)", _DESCAN),
    "descanning-restormer": ModernReference(6, "the descanning table's Restormer row (competition preset)", _DESCAN),
    "descanning-baseline": ModernReference(9, "the competition baseline (a small Restormer)", _DESCAN),
    "esrgan-psnr": ModernReference(7, "RRDBNet trained with L1 (the PSNR model)", "the GAN model's NIQE below it"),
    "esrgan-gan": ModernReference(7, "the GAN model, fine-tuned from esrgan-psnr with RaGAN", "its NIQE below the PSNR model's"),
    "inpaint-baseline": ModernReference(8, "BASELINE: one class for every image", "fills above a mean-colour fill"),
    "inpaint-real": ModernReference(8, "REAL: the clusters of BASELINE's features", "fills above a mean-colour fill"),
    "inpaint-max-class": ModernReference(8, "MAX_CLASS: the true classes", "fills above a mean-colour fill"),
    "inpaint-upscaler-x2": ModernReference(8, "the project's SRCNN x2 upscaler (RGB)", "Y-PSNR above bicubic"),
}  # fmt: skip


def available() -> list[str]:
    """Names of the registered reference checkpoints of chapters 1-4 (see also :func:`modern`)."""
    return sorted(REFERENCES)


def modern() -> list[str]:
    """Names of the references of chapters 5-9 (:data:`MODERN`), trained or not yet."""
    return list(MODERN)


def _reference(name: str) -> Reference:
    if name not in REFERENCES:
        raise KeyError(f"unknown reference checkpoint {name!r}; known: {available()}")
    return REFERENCES[name]


def card_path(name: str) -> Path:
    """Where the model card (JSON) of ``name`` lives in the package."""
    if name not in MODERN:
        _reference(name)
    return WEIGHTS / f"{name}.json"


def info(name: str) -> dict:
    """The model card of ``name``: command, data, steps, batch, time, hardware, commit, scores."""
    path = card_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model card for {name!r} (not trained yet?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a readable model card ({error})") from None


def _download(url: str, sha256: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        if file_sha256(tmp) != sha256:
            raise ValueError(f"{url}: downloaded file does not match its sha256 {sha256}")
        os.replace(tmp, target)
    except OSError as error:
        raise FileNotFoundError(
            f"{target}: missing, and downloading it from {url} failed ({error}); download it "
            "by hand and put it there"
        ) from error
    finally:
        Path(tmp).unlink(missing_ok=True)


def weights_path(name: str) -> Path:
    """The safetensors file of ``name``: in the package, or downloaded (and checked) once; a
    modern reference too large for the package is looked for in the download cache."""
    local = WEIGHTS / f"{name}.safetensors"
    if local.exists():
        return local
    if name in MODERN:
        if (CACHE / local.name).exists():
            return CACHE / local.name
        raise FileNotFoundError(
            f"{local}: the weights of {name!r} are missing; its card says where they are "
            f"({info(name).get('stored_as', 'no card')}): put the file in {CACHE}"
        )
    ref = _reference(name)
    if ref.url is None:
        raise FileNotFoundError(
            f"{local}: the weights of {name!r} are missing (a checkout without them? run "
            "scripts/train_references.py to train them)"
        )
    cached = CACHE / f"{name}.safetensors"
    if not cached.exists():
        _download(ref.url, ref.sha256 or "", cached)
    return cached


def check_weights(name: str, path: str | Path) -> None:
    """Refuse weights whose SHA-256 is not the one recorded for reference ``name``: the
    reference's ``sha256`` for hosted weights, else its model card's ``sha256`` (the file in the
    package). Raises ValueError naming the file (a flipped byte would otherwise load silently)."""
    ref = MODERN.get(name) or _reference(name)
    if isinstance(ref, Reference) and ref.url is not None:
        expected, where = ref.sha256, f"restorelab.pretrained.REFERENCES[{name!r}]"
        fix = "delete it to download it again"
    else:
        expected, where = info(name).get("sha256"), f"its model card {card_path(name).name}"
        fix = "reinstall restorelab"
    if not expected:
        raise ValueError(f"{path}: {where} records no sha256 to check the weights against")
    found = file_sha256(path)
    if found != expected:
        raise ValueError(
            f"{path}: damaged weights: their sha256 is not the one recorded in {where} "
            f"({expected[:12]}..., found {found[:12]}...); {fix}"
        )


def build(name: str) -> nn.Module:
    """The untrained network of reference ``name`` (a modern one: as its card describes it)."""
    if name in MODERN:
        spec = info(name)["model"]
        return models.build(spec["architecture"], spec["preset"], **spec["kwargs"])
    ref, channels = _reference(name), task(name).model_channels
    kwargs = {"in_channels": channels, "out_channels": channels, **ref.model_kwargs}
    return models.build(ref.model, ref.preset, **kwargs)


def task(name: str) -> Task:
    """The task (degradation and scoring) reference ``name`` was trained for."""
    spec = dict(_reference(name).task)
    return TASKS[spec.pop("name")](**spec)


def load(
    name: str, device: str | torch.device = "cpu", path: str | Path | None = None
) -> nn.Module:
    """Reference ``name`` with its trained weights, in ``eval()`` mode on ``device`` (float32).
    ``path``: its weights file where it is not yet where :func:`weights_path` looks (checked
    against the card all the same)."""
    from safetensors.torch import load_file

    path = weights_path(name) if path is None else Path(path)
    check_weights(name, path)
    model = build(name)
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.to(device).eval()


def save_weights(state: dict[str, torch.Tensor], path: Path, half: bool) -> None:
    """Write a state dict as safetensors (fp16 when ``half``), atomically."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        key: (value.half() if half and value.is_floating_point() else value).contiguous()
        for key, value in state.items()
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def benchmark_inputs(
    task: Task, benchmark: str, download: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """The clean images of ``benchmark`` and, for super-resolution on Set5, its MATLAB LR files.

    Returns ``(clean, degraded)``; ``degraded`` is None when the task degrades the images itself.
    """
    from restorelab.data import benchmark_images, matlab_lr_images

    clean = [image for _, image in benchmark_images(benchmark, download=download)]
    scale = getattr(task, "scale", None)
    return clean, None if scale is None else matlab_lr_images(benchmark, scale, download)


def convention(name: str) -> str:
    """How the card's numbers of reference ``name`` are computed (stated with every table)."""
    spec = _reference(name).task
    if spec["name"] == "sr":
        return (
            f"Y channel (BT.601 studio range), {spec['scale']} px shaved from every border, HR "
            "cropped to a multiple of the scale; Set5 input: the MATLAB LR files; other sets: "
            "restorelab's MATLAB-exact bicubic; outputs rounded to 8 bits; SSIM: Gaussian "
            "window 11, sigma 1.5, no downsampling"
        )
    if spec["name"] == "jpeg":
        return (
            f"grey images compressed by libjpeg (Pillow) at quality {spec['quality']}; PSNR, SSIM "
            "(Gaussian window 11, sigma 1.5, no downsampling) and PSNR-B on the 8-bit output, "
            "no border shave"
        )
    return (
        f"grey images, Gaussian noise of sigma {spec['sigma']:g} (0-255 scale) added to the float "
        "image with a fixed seed per image, not clipped; PSNR and SSIM on the 8-bit output, no "
        "border shave"
    )


def evaluate(name: str, download: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """Reference ``name`` and its input ("do nothing") scored on each benchmark of its card.

    Returns ``{benchmark: {"model": {metric: mean}, "input": {metric: mean}}}``.
    """
    from restorelab.experiment import mean_scores

    model, solved = load(name), task(name)
    results = {}
    for benchmark in _reference(name).benchmarks:
        clean, degraded = benchmark_inputs(solved, benchmark, download)
        results[benchmark] = {
            "model": mean_scores(solved.evaluate(model, clean, degraded)),
            "input": mean_scores(solved.evaluate(None, clean, degraded)),
        }
    return results


def scores(name: str, recompute: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """The card's evaluation of ``name``, or (``recompute``) measured again by :func:`evaluate`.

    Same shape as :func:`evaluate`. Chapters read the card in QUICK mode (a CPU would take
    minutes) and recompute in the full setting (downloading a missing benchmark).
    """
    return evaluate(name, download=True) if recompute else info(name)["evaluation"]


def budget(name: str) -> str:
    """How long reference ``name`` trained, from its card: steps, batch, minutes, hardware."""
    card = info(name)
    return (
        f"{card['steps']:,} steps of {card['batch_size']} patches in "
        f"{card['wall_seconds'] / 60:.1f} min on {card['hardware']}"
    )


PAPER_TARGETS = {  # (benchmark, metric, the paper's number, what the reference must beat)
    "srcnn-x2": ("Set5", "psnr_y", 36.66, 36.0),
    "arcnn-q10": ("Classic5", "psnr", 29.03, 28.8),
    "dncnn-s25": ("Set12", "psnr", 30.44, 29.97),  # the target is BM3D's Set12 number
    "msrresnet-x4": ("Set5", "psnr_y", 32.05, 31.0),
}


def card_markdown(name: str) -> str:
    """The model card of ``name`` as Markdown: recipe, budget, scores beside the paper's."""
    card = info(name)
    bench, metric, paper, target = PAPER_TARGETS[name]
    ours = card["evaluation"][bench]["model"][metric]
    verdict = "meets" if ours > target else f"falls {target - ours:.2f} dB short of"
    lines = [
        f"**{name}** ({card['model']}, {card['parameters']:,} parameters), trained with",
        f"`{card['command']}`: {budget(name)} (commit {card['commit']}).",
        f"Data: {card['data']}. Stored as {card['stored_as']}.",
        "",
        "| benchmark | metric | input | reference |",
        "|---|---|---|---|",
    ]
    for benchmark, rows in card["evaluation"].items():
        for key, value in rows["model"].items():
            lines.append(f"| {benchmark} | {key} | {rows['input'][key]:.4f} | {value:.4f} |")
    lines += [
        "",
        f"On {bench} it reaches {ours:.2f} dB ({metric}) and {verdict} the course's target of "
        f"{target:.2f} dB; the paper reports {paper:.2f} dB after a far longer run (this one "
        f"saw {card['steps'] * card['batch_size']:,} patches; `scripts/train_references.py "
        "train --steps N` reruns it longer).",
        f"Convention: {card['convention']}.",
    ]
    return "\n".join(lines)


def _number(metric: str, value: float) -> str:
    return f"{value:.2f} dB" if "psnr" in metric else f"{value:.4f}"


def listing() -> str:
    """One line per reference checkpoint: name, model, task, and its card's scores (model vs
    input, on each benchmark); what ``python -m restorelab.pretrained`` prints."""
    lines = []
    for name in available():
        spec = _reference(name).task
        settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name" and v is not None)
        try:
            found = info(name)
        except (FileNotFoundError, ValueError) as error:
            lines.append(f"{name}: {error}")
            continue
        scores = "; ".join(
            f"{bench} " + ", ".join(f"{metric} {_number(metric, value)} (input "
                                    f"{_number(metric, rows['input'][metric])})"
                                    for metric, value in rows["model"].items())
            for bench, rows in found["evaluation"].items()
        )  # fmt: skip
        lines.append(f"{name}: {found['model']}, {spec['name']} ({settings}); {scores}; "
                     f"{budget(name)}")  # fmt: skip
    return "\n".join(lines)


PENDING = "reference pending the GPU run"  # what a chapter shows until it is published


def card(name: str) -> dict:
    """The model card of reference ``name`` with a ``status``: ``"trained"``, or ``"not trained
    yet"`` (no card in the package: the chapter then says its reference awaits the GPU run).

    For the chapters: ``card("descanning-kbnet")["evaluation"]["model"]["y_mae"]``, and each
    card's ``targets`` (what, value, threshold, passed)."""
    described = MODERN.get(name)
    if described is None:
        _reference(name)
    try:
        found = info(name)
    except FileNotFoundError:
        return {"name": name, "status": "not trained yet",
                **({} if described is None else {"chapter": described.chapter,
                   "shows": described.shows, "target": described.target}),
                "note": f"{PENDING} (scripts/gpu_session.sh, then "
                        "scripts/train_references.py publish)"}  # fmt: skip
    return {**found, "status": "trained"}


def summary(name: str) -> str:
    """One Markdown paragraph on reference ``name`` for a chapter: its budget, its scores and
    its targets met or missed, or that it is not trained yet."""
    found = card(name)
    if found["status"] != "trained":
        return f"**{name}** ({found.get('shows', name)}): {found['note']}."
    scores = found["evaluation"].get("model", found["evaluation"])
    shown = ", ".join(f"{k} {_number(k, v)}" for k, v in scores.items() if isinstance(v, float))
    verdicts = "; ".join(
        f"{t['what']}: {'met' if t['passed'] else 'missed' if t['passed'] is False else 'not measured'}"
        + ("" if t["value"] is None else f" ({t['value']:.3f} vs {t['threshold']:.3f})")
        for t in found.get("targets", [])
    )  # fmt: skip
    steps = found.get("steps_done", found.get("steps"))
    return (f"**{name}** ({found.get('shows', MODERN[name].shows if name in MODERN else found['model'])}): "
            f"{steps:,} steps of {found['batch_size']} on {found['hardware']}; {shown}. "
            f"Targets: {verdicts or 'none recorded'}.")  # fmt: skip


def descanning_rows() -> list[dict]:
    """The trained descanning references as rows of ``restorelab/descanning.csv`` (setting
    ``"reference"``), for ``descanning.descanning_table(..., live=descanning_rows())``; only
    those whose card exists, the scans' row first, then the models from the lowest Y-MAE."""
    from restorelab.descanning import INPUT_ROW

    rows = []
    for name in (n for n in MODERN if n.startswith("descanning-")):
        found = card(name)
        if found["status"] != "trained":
            continue
        common = dict(data=found["data"].split(",")[0], setting="reference", steps=found["steps_done"],
                      batch=found["batch_size"], patch=found["patch"], seed=0)  # fmt: skip
        if not rows:
            scans = found["evaluation"]["input"]
            rows.append(dict(model=INPUT_ROW, registry="", params=0, **common,
                             y_mae=round(scans["y_mae"], 3), psnr=round(scans["psnr"], 2)))  # fmt: skip
        ours = found["evaluation"]["model"]
        rows.append(dict(model=found["row"], registry=found["model"]["architecture"],
                         params=found["parameters"], **common, y_mae=round(ours["y_mae"], 3),
                         psnr=round(ours["psnr"], 2)))  # fmt: skip
    return rows[:1] + sorted(rows[1:], key=lambda row: row["y_mae"])


STEP_0 = "at step 0"  # the label of the initial weights' maps


def basis_maps_path(name: str) -> Path:
    """Where the maps of dominant bases of KBNet reference ``name`` are stored (in the package)."""
    return WEIGHTS / f"{name}.bases.safetensors"


def kba_basis_maps(
    name: str, scan: torch.Tensor, trained: nn.Module | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """Chapter 5: the maps of dominant kernel bases (:func:`restorelab.viz.kba_dominant_bases`)
    of KBNet reference ``name`` on ``scan`` (3, H, W) in [0, 1], at step 0 (its row's initial
    weights, seed 0) and after training: ``{"at step 0": {"first block": (H, W), ...},
    "after 500 steps": {...}}``, basis indices (int64).

    Computed from ``trained`` (default: :func:`load`) where the weights are here. Without them
    (weights over the package's limit), the maps stored at publication
    (:func:`save_kba_basis_maps`), which hold for the scan they were computed on only: another
    scan, or no stored maps, raises FileNotFoundError."""
    from restorelab.descanning import build_row
    from restorelab.viz import kba_dominant_bases

    if trained is None:
        try:
            trained = load(name)
        except FileNotFoundError as missing:
            return _stored_basis_maps(name, scan, missing)
    found = info(name)
    nets = {STEP_0: build_row(found["row"], "full", seed=0).eval(),
            f"after {found['steps_done']} steps": trained}  # fmt: skip
    return {label: kba_dominant_bases(net, scan) for label, net in nets.items()}


def save_kba_basis_maps(
    name: str,
    scan: torch.Tensor,
    maps: dict[str, dict[str, torch.Tensor]],
    folder: Path | None = None,
) -> Path:
    """Store :func:`kba_basis_maps` of ``scan`` in ``folder`` (default: beside the card of
    ``name``) as uint8 safetensors, the scan too (a few hundred kB), atomically; returns the file."""
    tensors = {"scan": to_levels(scan.cpu())}
    tensors |= {f"{label}/{layer}": bases.to(torch.uint8) for label, layers in maps.items()
                for layer, bases in layers.items()}  # fmt: skip
    path = basis_maps_path(name) if folder is None else folder / basis_maps_path(name).name
    save_weights(tensors, path, half=False)
    return path


def _stored_basis_maps(
    name: str, scan: torch.Tensor, missing: FileNotFoundError
) -> dict[str, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    path = basis_maps_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no stored maps of {name!r}, and {missing}") from None
    stored = load_file(str(path))
    kept = stored.pop("scan")
    if kept.shape != scan.shape or (kept.int() - to_levels(scan.cpu()).int()).abs().max() > 1:
        raise FileNotFoundError(
            f"{path}: the maps stored for {name!r} are of another scan (chapter 5's held-out "
            f"page in QUICK mode), and {missing}"
        )
    maps: dict[str, dict[str, torch.Tensor]] = {}
    for key, bases in sorted(stored.items(), key=lambda item: not item[0].startswith(STEP_0)):
        label, layer = key.split("/")
        maps.setdefault(label, {})[layer] = bases.long()
    return maps


def references_markdown(names: Sequence[str]) -> str:
    """The reference runs ``names`` as Markdown for a chapter page: one paragraph each
    (:func:`summary`), trained or pending the GPU run."""
    return "\n\n".join(summary(name) for name in names)


def seed_psnrs(name: str) -> dict[str, float]:
    """Seed -> validation PSNR of a reference trained with several seeds (the inpainter's
    strategies, chapter 8); empty until it is trained."""
    found = card(name)
    if found["status"] != "trained":
        return {}
    return dict(found["evaluation"].get("psnr_per_seed", {}))


if __name__ == "__main__":
    print(listing())
