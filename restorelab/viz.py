"""Figures: before/after comparisons with a zoomed crop, and training curves.

Taught in chapter 1 and used by every chapter. Functions return the matplotlib Figure and save
it when given a path (so notebooks show it and the CLI writes it). Every figure is drawn with
:data:`STYLE` at :data:`PAGE_WIDTH`, so that its text stays readable on the course's site.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "ipympl")):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from restorelab.io import to_uint8  # noqa: E402

# The site's text column is about 700 px wide; notebooks show figures at 100 dpi, so a figure
# PAGE_WIDTH inches wide is shown at its own size and 9 pt text is about 12 px high on the page.
PAGE_WIDTH = 7.0
STYLE = {
    "figure.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 10,
}


@contextmanager
def page_style() -> Iterator[None]:
    """Draw with :data:`STYLE`, then restore those settings (and only those).

    Not ``plt.rc_context``: it restores *every* setting it saw on entry, and when a notebook's
    first figure is drawn inside it, the backend's switch to interactive mode made inside is
    undone on exit, so Jupyter stops showing every later figure of the page.
    """
    saved = {key: plt.rcParams[key] for key in STYLE}
    plt.rcParams.update(STYLE)
    try:
        yield
    finally:
        plt.rcParams.update(saved)


def _wrap(text: str, width_inches: float, points: float) -> str:
    """``text`` in lines that fit ``width_inches`` at ``points`` (a character is ~0.6 em)."""
    return textwrap.fill(text, max(int(width_inches * 72 / (0.6 * points)), 8))


def _show(ax, image: torch.Tensor, title: str, width_inches: float) -> None:
    array = to_uint8(image)
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=255)
    ax.set_title(_wrap(title, width_inches, STYLE["axes.titlesize"]))
    ax.set_axis_off()


def most_detailed_crop(image: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most gradient energy."""
    grey = image.float().mean(0, keepdim=True)[None]
    energy = grey.diff(dim=-1).abs()[..., :-1, :] + grey.diff(dim=-2).abs()[..., :, :-1]
    pooled = torch.nn.functional.avg_pool2d(energy, size, stride=max(size // 4, 1))
    idx = int(pooled.flatten().argmax())
    row, col = divmod(idx, pooled.shape[-1])
    stride = max(size // 4, 1)
    return row * stride, col * stride


def comparison_figure(
    panels: Mapping[str, torch.Tensor],
    crop: tuple[int, int, int] | None = None,
    path: str | Path | None = None,
    title: str | None = None,
):
    """Images side by side (top row) with the same zoomed crop of each below.

    ``panels``: title -> image (C, H, W) in [0, 1], all the same size (e.g. "bicubic 30.1 dB",
    "SRCNN 31.0 dB", "ground truth"). ``crop``: (top, left, size); by default the most detailed
    window of the last panel, a quarter of the shorter side. The figure is :data:`PAGE_WIDTH`
    wide whatever the number of panels; long titles wrap.
    """
    images = list(panels.values())
    h, w = images[-1].shape[-2:]
    if crop is None:
        size = max(min(h, w) // 4, 8)
        crop = (*most_detailed_crop(images[-1], size), size)
    top, left, size = crop
    column = PAGE_WIDTH / len(panels)
    titles = {name: _wrap(name, column, STYLE["axes.titlesize"]) for name in panels}
    title_lines = max(t.count("\n") + 1 for t in titles.values()) + 1  # and the zoom's
    if title:
        title = _wrap(title, PAGE_WIDTH, STYLE["figure.titlesize"])
        title_lines += title.count("\n") + 1
    height = column * (h / w + 1) + title_lines * 0.2
    with page_style():
        fig, axes = plt.subplots(
            2, len(panels), figsize=(PAGE_WIDTH, height), squeeze=False, layout="constrained"
        )
        for col, (name, image) in enumerate(panels.items()):
            _show(axes[0, col], image, name, column)
            axes[0, col].add_patch(
                Rectangle((left, top), size, size, fill=False, edgecolor="red", linewidth=1.5)
            )
            zoom = image[..., top : top + size, left : left + size]
            _show(axes[1, col], zoom, "zoom of the red square" if col == 0 else "", column)
        if title:
            fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def curves_figure(
    history: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path | None = None,
    baselines: Mapping[str, float] | None = None,
    metric: str = "psnr_y",
):
    """Training loss (log scale) and the validation ``metric`` against the step.

    ``history``: :meth:`restorelab.train.Trainer.fit`'s rows, or {label: rows} to compare runs
    (e.g. L1 against L2, residual against direct). ``baselines``: horizontal lines on the
    validation plot (e.g. {"bicubic": 30.4}).
    """
    runs = history if isinstance(history, Mapping) else {"model": history}
    with page_style():
        fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.2))
        shown = list((baselines or {}).values())  # every value the validation panel draws
        for label, rows in runs.items():
            train = [r for r in rows if r.get("kind") == "train"]
            val = [r for r in rows if r.get("kind") == "val" and metric in r]
            ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label=label)
            ax_val.plot([r["step"] for r in val], [r[metric] for r in val], marker="o", label=label)
            shown += [r[metric] for r in val]
        ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
        for name, value in (baselines or {}).items():
            ax_val.axhline(value, linestyle="--", color="grey", label=name)
        if shown:  # every curve and baseline inside the panel, none on its edge
            pad = 0.08 * ((max(shown) - min(shown)) or 1.0)
            ax_val.set_ylim(min(shown) - pad, max(shown) + pad)
        ax_val.set(xlabel="step", ylabel=metric, title=f"validation {metric}")
        ax_val.legend()
        if len(runs) > 1:
            ax_loss.legend()
        fig.tight_layout()  # leaves room above for a suptitle that a chapter adds
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def gan_curves_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path | None = None
):
    """What a GAN's training log reveals, one line per run (chapter 7).

    ``histories``: {label: :meth:`restorelab.train.GANTrainer.fit` rows}. Panels: the
    discriminator's loss; its mean logit on real (solid) and fake (dashed) images, whose gap
    says how easily it tells them apart; the norm of the generator's gradient (log scale), which
    falls towards 0 when the generator is starved.
    """
    with page_style():
        fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH, 3.2 + 0.25 * len(histories)),
                                 layout="constrained")  # fmt: skip
        for index, (label, rows) in enumerate(histories.items()):
            colour = f"C{index}"
            train = [r for r in rows if r.get("kind") == "train" and "g_grad_norm" in r]
            steps = [r["step"] for r in train]
            axes[0].plot(steps, [r["d_loss"] for r in train], color=colour, label=label)
            axes[1].plot(steps, [r["d_real"] for r in train], color=colour, label=label)
            axes[1].plot(steps, [r["d_fake"] for r in train], color=colour, linestyle="--")
            axes[2].plot(steps, [r["g_grad_norm"] for r in train], color=colour, label=label)
        axes[0].set(xlabel="step", title="discriminator loss")
        axes[1].set(xlabel="step", title="D's mean logit: real —, fake --")
        axes[2].set(xlabel="step", yscale="log", title="generator gradient norm")
        # below the panels, where no curve runs: one run per line, each label whole
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=1)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def perception_distortion_figure(
    sweep: Sequence[Mapping[str, float | None]],
    bicubic: Mapping[str, float | None] | None = None,
    truth_niqe: float | None = None,
    title: str = "perception-distortion: PSNR model (α=0) to GAN model (α=1)",
):
    """Y-PSNR against NIQE, and against LPIPS where the rows have it (chapter 7).

    ``sweep``: rows of :func:`restorelab.interpolation.interpolation_sweep` (``alpha``,
    ``psnr_y``, ``niqe``, maybe ``lpips``); ``bicubic``: the same scores of bicubic, drawn as a
    square; ``truth_niqe``: the ground truth's NIQE, a dashed line. One panel per perception
    score the rows hold.
    """
    names = {"niqe": "NIQE (no reference), lower is more natural",
             "lpips": "LPIPS (AlexNet) to the ground truth, lower is better"}  # fmt: skip
    shown = {key: label for key, label in names.items()
             if all(row.get(key) is not None for row in sweep)}  # fmt: skip
    with page_style():
        fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(PAGE_WIDTH, 3.8), squeeze=False,
                                 layout="constrained")  # fmt: skip
        for ax, (key, label) in zip(axes[0], shown.items(), strict=False):
            ax.plot([r["psnr_y"] for r in sweep], [r[key] for r in sweep], marker="o",
                    label="PSNR model to GAN model")  # fmt: skip
            for i, row in enumerate(sweep):  # labels above and below in turn: neighbours are close
                ax.annotate(f"α={row['alpha']:.1f}", (row["psnr_y"], row[key]),
                            textcoords="offset points", xytext=(4, 5 if i % 2 else -11),
                            fontsize=8)  # fmt: skip
            if bicubic is not None and bicubic.get(key) is not None:
                ax.scatter(bicubic["psnr_y"], bicubic[key], marker="s", color="C1",
                           label="bicubic", zorder=3)  # fmt: skip
            if key == "niqe" and truth_niqe is not None:
                ax.axhline(truth_niqe, linestyle="--", color="grey", label="ground truth")
            ax.set(xlabel="Y-PSNR (dB), higher is better", ylabel=label)
            ax.legend(fontsize=8)
        if not shown:  # outputs too flat for NIQE and no LPIPS: distortion only
            axes[0][0].plot([r["alpha"] for r in sweep], [r["psnr_y"] for r in sweep], marker="o")
            axes[0][0].set(xlabel="α", ylabel="Y-PSNR (dB)")
        fig.suptitle(title, fontsize=10)
    return fig


def descanning_figure(rows: Sequence[Mapping], title: str = "the descanning references"):
    """Y-MAE of each row of a descanning table (chapters 5, 6 and 9), the scans' first, with
    the references' target (half the scans' Y-MAE) as a dashed line; lower is better."""
    with page_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.45 * len(rows) + 1.2), layout="constrained")
        names = [row["model"] for row in rows][::-1]
        values = [row["y_mae"] for row in rows][::-1]
        bars = ax.barh(names, values, color=["C0"] * (len(rows) - 1) + ["C7"])
        ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
        ax.axvline(rows[0]["y_mae"] / 2, linestyle="--", color="C3", label="half the scans' Y-MAE")
        ax.set(xlabel="Y-MAE on the held-out pages (8-bit levels), lower is better", title=title)
        ax.legend(fontsize=8, loc="lower right")
    return fig


def kba_dominant_bases(model: torch.nn.Module, scan: torch.Tensor) -> dict[str, torch.Tensor]:
    """Chapter 5: which of its kernel bases each KBA layer weights most at each pixel, in the
    first block of a :class:`restorelab.models.kbnet.KBNet` (full resolution) and the last block
    of its decoder (full resolution again): ``{"first block": (H, W), "last block": (H, W)}``,
    basis indices (int64). ``scan``: (3, H, W) in [0, 1]. The layers' ``coefficients``
    (N, nset, H, W) are caught with forward hooks while the model restores the scan."""
    from restorelab.infer import predict

    layers = {"first block": model.encoders[0][0].kba, "last block": model.decoders[-1][-1].kba}
    dominant = {}
    hooks = [layer.register_forward_hook(lambda mod, args, out, name=name: dominant.__setitem__(
        name, mod.coefficients(args[0])[0].argmax(0).cpu())) for name, layer in layers.items()]  # fmt: skip
    try:
        predict(model, scan)
    finally:
        for hook in hooks:
            hook.remove()
    h, w = scan.shape[-2:]
    return {name: bases[:h, :w] for name, bases in dominant.items()}  # without predict's padding


def basis_separation(bases: torch.Tensor, letters: torch.Tensor) -> float:
    """Chapter 5: how differently a KBA layer filters letters and paper, from its map of dominant
    bases (H, W) (:func:`kba_dominant_bases`) and a mask (H, W) of the letters: the total
    variation distance between the two histograms of bases, 0 (the same mix of bases on both)
    to 1 (no basis in common)."""
    counts = [torch.bincount(bases[where], minlength=int(bases.max()) + 1).double()
              for where in (letters, ~letters)]  # fmt: skip
    on_letters, on_paper = (count / count.sum() for count in counts)
    return 0.5 * (on_letters - on_paper).abs().sum().item()


def kba_basis_figure(
    scan: torch.Tensor, dominant: Mapping[str, torch.Tensor], title: str | None = None
):
    """Chapter 5: ``scan`` (3, H, W) in [0, 1] beside each layer's map of dominant bases
    (:func:`kba_dominant_bases`), one colour per basis."""
    with page_style():
        fig, axes = plt.subplots(
            1, 1 + len(dominant), figsize=(PAGE_WIDTH, 3.1), layout="constrained"
        )
        axes[0].imshow(to_uint8(scan))
        axes[0].set_title("held-out scan")
        for ax, (name, bases) in zip(axes[1:], dominant.items(), strict=True):
            ax.imshow(bases, cmap="tab20", interpolation="nearest")
            ax.set_title(f"{name}:\n{bases.unique().numel()} bases dominate")
        for ax in axes:
            ax.axis("off")
        if title:
            fig.suptitle(title)
    return fig
