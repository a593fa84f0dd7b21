"""Data-path diagrams of the course's networks: boxes, arrows and skip connections.

Drawn in each model chapter (1 SRCNN, 2 AR-CNN, 3 DnCNN, 4 SRResNet and MSRResNet) instead of
``print(model)``; blocks with parallel branches (5: KBNet's block) are drawn as a graph by
:func:`draw_block_graph`. :func:`data_path` reads a short list of :class:`Stage` (what a box does, its
kernel and its filters) and :class:`Skip` connections off a *built* model, so the diagram shows
the network the chapter trains, with its real depth and widths; :func:`draw_data_path` draws
it; the U-Net of chapter 8 is drawn as a U by :func:`draw_unet`. :func:`draw_data_path` draws
it top to bottom with matplotlib, the tensor shape (channels x height x width) beside each
arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "ipympl")):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402
from torch import nn  # noqa: E402

from restorelab.models.arcnn import ARCNN  # noqa: E402
from restorelab.models.dncnn import DnCNN  # noqa: E402
from restorelab.models.kbnet import KBBlock  # noqa: E402
from restorelab.models.msrresnet import MSRResNet  # noqa: E402
from restorelab.models.srcnn import SRCNN  # noqa: E402
from restorelab.models.srresnet import ResidualBlock, SRResNet, Upsampler  # noqa: E402
from restorelab.models.unet_inpainter import UNetInpainter  # noqa: E402


@dataclass(frozen=True)
class Stage:
    """One box: ``repeat`` identical layers (a conv ``kernel`` x ``kernel`` with ``filters``
    output channels, then ``after``), which enlarge the image ``upscale`` times each."""

    name: str
    kernel: int
    filters: int
    after: str = ""
    repeat: int = 1
    upscale: int = 1


@dataclass(frozen=True)
class Skip:
    """The tensor entering stage ``start`` is combined (``sign``) with the output of stage
    ``end`` (``start == end``: a residual block, ``x + F(x)``); ``label`` names the path."""

    start: int
    end: int
    label: str
    sign: str = "+"


@dataclass(frozen=True)
class DataPath:
    """What :func:`draw_data_path` draws: the input, the stages, the skips and the output."""

    title: str
    source: str
    target: str
    channels: int
    stages: tuple[Stage, ...]
    skips: tuple[Skip, ...] = ()
    low_res: bool = False  # True: the network works on the small image (h x w) and upsamples


def _conv(layer: nn.Conv2d) -> tuple[int, int]:
    return layer.kernel_size[0], layer.out_channels


def _upsampler(upsampler: Upsampler, after: str) -> list[Stage]:
    factors = [stage.shuffle.upscale_factor for stage in upsampler]
    if not factors:
        return []
    kernel, filters = _conv(upsampler[0].conv)
    return [
        Stage(f"sub-pixel upsampling \u00d7{factors[0]}", kernel, filters,
              f"PixelShuffle \u00d7{factors[0]}, {after}", repeat=len(factors), upscale=factors[0])
    ]  # fmt: skip


def _residual_blocks(body: nn.Sequential, acts: str) -> Stage:
    block: ResidualBlock = body[0]
    kernel, filters = _conv(block.conv1)
    second = f"conv {kernel}\u00d7{kernel}"
    if isinstance(block.bn1, nn.BatchNorm2d):
        acts, second = f"BN, {acts}", f"{second}, BN"
    return Stage("residual block", kernel, filters, f"{acts}, {second}", repeat=len(body))


def data_path(model: nn.Module) -> DataPath:
    """The :class:`DataPath` of a built SRCNN, AR-CNN, DnCNN, SRResNet or MSRResNet."""
    if isinstance(model, SRCNN):
        (k1, f1), (k2, f2), (k3, f3) = map(_conv, (model.extract, model.map, model.reconstruct))
        stages = (Stage("patch extraction", k1, f1, "ReLU"),
                  Stage("non-linear mapping", k2, f2, "ReLU"),
                  Stage("reconstruction", k3, f3))  # fmt: skip
        return DataPath("SRCNN (chapter 1)", "LR image upsampled by bicubic, Y channel",
                        "restored Y channel", model.extract.in_channels, stages)  # fmt: skip
    if isinstance(model, ARCNN):
        convs = (model.extract, model.enhance, model.map, model.reconstruct)
        names = ("feature extraction", "feature enhancement", "mapping", "reconstruction")
        stages = tuple(
            Stage(name, *_conv(conv), "ReLU" if i < 3 else "")
            for i, (name, conv) in enumerate(zip(names, convs, strict=True))
        )
        return DataPath("AR-CNN (chapter 2)", "JPEG-compressed image, Y channel",
                        "restored Y channel", model.extract.in_channels, stages)  # fmt: skip
    if isinstance(model, DnCNN):
        convs = [layer for layer in model.model if isinstance(layer, nn.Conv2d)]
        norm = any(isinstance(layer, nn.BatchNorm2d) for layer in model.model)
        stages = (Stage("first layer", *_conv(convs[0]), "ReLU"),
                  Stage("middle layer", *_conv(convs[1]), "BN, ReLU" if norm else "ReLU",
                        repeat=len(convs) - 2),
                  Stage("noise estimate f(y)", *_conv(convs[-1])))  # fmt: skip
        return DataPath(f"DnCNN, {len(convs)} layers (chapter 3)", "noisy image y",
                        "denoised image y - f(y)", convs[0].in_channels, stages,
                        (Skip(0, 2, "the input y, minus the noise estimate", "\u2212"),))  # fmt: skip
    if isinstance(model, MSRResNet):
        stages = (Stage("head", *_conv(model.conv_first), "LeakyReLU"),
                  _residual_blocks(model.body, "ReLU"),
                  *_upsampler(model.upsampler, "LeakyReLU"),
                  Stage("high-resolution conv", *_conv(model.conv_hr), "LeakyReLU"),
                  Stage("output conv", *_conv(model.conv_last)))  # fmt: skip
        return DataPath(f"MSRResNet \u00d7{model.upscale} (chapter 4)", "LR image, RGB",
                        "SR image, RGB", model.conv_first.in_channels, stages,
                        (Skip(1, 1, "x + F(x)"),
                         Skip(0, len(stages) - 1, f"global skip: bilinear \u00d7{model.upscale}"
                              " of the input")), low_res=True)  # fmt: skip
    if isinstance(model, SRResNet):
        stages = (Stage("head", *_conv(model.conv_first), "PReLU"),
                  _residual_blocks(model.body, "PReLU"),
                  Stage("body conv", *_conv(model.conv_body), "BN"),
                  *_upsampler(model.upsampler, "PReLU"),
                  Stage("output conv", *_conv(model.conv_last)))  # fmt: skip
        return DataPath(f"SRResNet \u00d7{model.upscale} (chapter 4)", "LR image, RGB",
                        "SR image, RGB", model.conv_first.in_channels, stages,
                        (Skip(1, 1, "x + F(x)"),
                         Skip(1, 2, "skip from the head")), low_res=True)  # fmt: skip
    raise TypeError(
        f"no data-path diagram for {type(model).__name__}: "
        "data_path knows SRCNN, ARCNN, DnCNN, SRResNet and MSRResNet"
    )


def _size(low_res: bool, factor: int) -> str:
    if not low_res:
        return "H \u00d7 W"
    return "h \u00d7 w" if factor == 1 else f"{factor}h \u00d7 {factor}w"


def draw_data_path(model: nn.Module | DataPath, path: str | Path | None = None):
    """Draw the data path of ``model`` (or of a :class:`DataPath`) top to bottom.

    Each box names a stage, its conv (kernel, filters) and what follows it; the shape beside
    each arrow is channels x height x width; skips run on the right into a circle that adds
    (or subtracts) them. Returns the matplotlib Figure (saved to ``path`` when given).
    """
    spec = model if isinstance(model, DataPath) else data_path(model)
    merges = sorted({skip.end for skip in spec.skips})
    # rows from the top: ("label", text) | ("stage", index) | ("merge", stage index)
    rows: list[tuple[str, object]] = [("label", spec.source)]
    for i in range(len(spec.stages)):
        rows.append(("stage", i))
        if i in merges:
            rows.append(("merge", i))
    rows.append(("label", spec.target))
    heights = {"label": 0.42, "stage": 0.72, "merge": 0.36}
    gap, centre, radius = 0.46, 2.75, 0.15
    width = centre + (5.3 + 0.3 * len(spec.skips) if spec.skips else 2.5)
    total = sum(heights[kind] for kind, _ in rows) + gap * (len(rows) - 1) + 0.2
    fig, ax = plt.subplots(figsize=(width, total))
    ax.set_xlim(0, width)
    ax.set_ylim(0, total)
    ax.set_axis_off()
    ax.set_title(spec.title, fontsize=13, loc="left")

    top, centres, entry, box_top = total - 0.05, {}, {}, {}
    channels, factor = spec.channels, 1
    for r, (kind, item) in enumerate(rows):
        height = heights[kind]
        y = top - height / 2
        centres[r] = y
        if kind == "label":
            ax.text(centre, y, str(item), ha="center", va="center", fontsize=11, style="italic")
        elif kind == "stage":
            stage = spec.stages[item]
            entry[item] = top + gap * 0.75  # where a skip leaves the arrow into this stage
            ax.add_patch(FancyBboxPatch((centre - 2.35, top - height), 4.7, height,
                                        boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor="#e8f0fb", edgecolor="#2b5d9c", linewidth=1.2))  # fmt: skip
            grouped = any(skip.start == skip.end == item for skip in spec.skips)
            repeat = f", {stage.repeat} times" if stage.repeat > 1 and not grouped else ""
            box_top[item] = top
            ax.text(centre, y + 0.15, stage.name + repeat, ha="center", va="center",
                    fontsize=11.5, fontweight="bold")  # fmt: skip
            plural = "s" if stage.filters > 1 else ""
            detail = f"conv {stage.kernel}\u00d7{stage.kernel}, {stage.filters} filter{plural}"
            ax.text(centre, y - 0.16, detail + (f", {stage.after}" if stage.after else ""),
                    ha="center", va="center", fontsize=10)  # fmt: skip
            channels = stage.filters // (stage.upscale**2)
            factor *= stage.upscale**stage.repeat
        else:
            ax.add_patch(Circle((centre, y), radius, facecolor="white", edgecolor="black"))
            sign = next(skip.sign for skip in spec.skips if skip.end == item)
            ax.text(centre, y, sign, ha="center", va="center", fontsize=13)
        if r + 1 < len(rows):  # the arrow down to the next row, with the tensor's shape
            start, end = top - height, top - height - gap
            ax.annotate("", (centre, end), (centre, start),
                        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2})  # fmt: skip
            ax.text(centre - 0.12, (start + end) / 2, f"{channels} \u00d7 {_size(spec.low_res, factor)}",
                    ha="right", va="center", fontsize=9.5, color="#444444")  # fmt: skip
        top -= height + gap

    merge_y = {item: centres[r] for r, (kind, item) in enumerate(rows) if kind == "merge"}
    lanes = sorted(spec.skips, key=lambda skip: skip.end - skip.start)
    for lane, skip in enumerate(lanes):
        x = centre + 2.65 + 0.3 * lane
        repeat = spec.stages[skip.start].repeat
        plate = skip.start == skip.end and repeat > 1  # a block and its skip, repeated
        y0 = box_top[skip.start] + 0.07 if plate else entry[skip.start]
        y1 = merge_y[skip.end]
        ax.plot([centre, x, x], [y0, y0, y1], color="#c0392b", lw=1.4)
        ax.annotate("", (centre + radius, y1), (x, y1),
                    arrowprops={"arrowstyle": "-|>", "color": "#c0392b", "lw": 1.4})  # fmt: skip
        if not plate:
            ax.text(x + 0.1, y1 + 0.22, skip.label, ha="left", va="center", fontsize=9.5,
                    color="#c0392b")  # fmt: skip
            continue
        y_top, y_bottom = box_top[skip.start] + 0.14, y1 - radius - 0.12
        ax.add_patch(FancyBboxPatch((centre - 2.5, y_bottom), x - centre + 2.65, y_top - y_bottom,
                                    boxstyle="round,pad=0,rounding_size=0.1", fill=False,
                                    linestyle="--", edgecolor="#555555"))  # fmt: skip
        ax.text(centre - radius - 0.15, y1, f"{repeat} blocks, each {skip.label}", ha="right",
                va="center", fontsize=10, fontweight="bold", color="#555555")  # fmt: skip
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


@dataclass(frozen=True)
class BlockGraph:
    """A block with parallel branches: ``nodes`` id -> (column, row, text), rows from the top;
    ``edges`` (from, to, is_skip); ``merges`` are drawn as circles holding their text."""

    title: str
    nodes: dict
    edges: tuple[tuple[str, str, bool], ...]
    merges: frozenset = frozenset()


def kbblock_graph(block: KBBlock) -> BlockGraph:
    """The data path of a built :class:`~restorelab.models.kbnet.KBBlock` (chapter 5)."""
    c, kba = block.conv3.out_channels, block.kba
    nset, hidden = kba.nset, block.conv4.out_channels
    k11 = block.conv11[1].kernel_size[0]
    x = "\u00d7"
    nodes = {
        "in": (1.5, 0, f"x: {c} {x} H {x} W"),
        "ln1": (1.5, 1, "LayerNorm"),
        "sca": (0, 2.3, "channel attention (SCA)\navg pool, 1\u00d71 conv\none weight per channel"),
        "coef": (
            1,
            2.3,
            f"coefficients\ngrouped 3\u00d73, SimpleGate,\n1\u00d71 conv {x} {nset} maps",
        ),
        "uf": (2, 2.3, "1\u00d71 conv,\ndepthwise 3\u00d73"),
        "conv11": (3, 2.3, f"1\u00d71 conv,\ngrouped {k11}\u00d7{k11} conv"),
        "kba": (
            1.5,
            3.7,
            f"KBA: every pixel filtered by its own\nmix of {nset} kernel bases (grouped 3\u00d73)",
        ),
        "mul": (1.5, 4.8, "\u2299"),
        "proj": (1.5, 5.7, f"1\u00d71 conv, {x} \u03b2"),
        "add1": (1.5, 6.6, "+"),
        "ffn": (1.5, 7.5, f"LayerNorm, 1\u00d71 conv to {hidden}"),
        "gate": (1.5, 8.4, f"SimpleGate: a \u2299 b ({hidden // 2} channels)"),
        "proj2": (1.5, 9.3, f"1\u00d71 conv to {c}, {x} \u03b3"),
        "add2": (1.5, 10.2, "+"),
        "out": (1.5, 11.1, f"out: {c} {x} H {x} W"),
    }
    edges = [("in", "ln1", False), ("ln1", "sca", False), ("ln1", "coef", False),
             ("ln1", "uf", False), ("ln1", "conv11", False), ("coef", "kba", False),
             ("uf", "kba", False), ("sca", "mul", False), ("kba", "mul", False),
             ("conv11", "mul", False), ("mul", "proj", False), ("proj", "add1", False),
             ("in", "add1", True), ("add1", "ffn", False), ("ffn", "gate", False),
             ("gate", "proj2", False), ("proj2", "add2", False), ("add1", "add2", True),
             ("add2", "out", False)]  # fmt: skip
    title = f"KBNet block, {c} channels: KBA and multi-axis fusion, then a gated FFN"
    return BlockGraph(title, nodes, tuple(edges), frozenset({"mul", "add1", "add2"}))


def draw_block_graph(block: KBBlock | BlockGraph, path: str | Path | None = None):
    """Draw a block with parallel branches top to bottom (skips in red, on the left; a branch
    that passes a row enters its merge from the side, around the row's boxes).

    Returns the matplotlib Figure (saved to ``path`` when given).
    """
    graph = block if isinstance(block, BlockGraph) else kbblock_graph(block)
    col_w, row_h, box_w, box_h = 2.6, 0.62, 2.35, 0.42
    rows = max(row for _, row, _ in graph.nodes.values())
    fig, ax = plt.subplots(figsize=(4 * col_w * 0.95 + 0.8, (rows + 1) * row_h + 0.6))
    ax.set_xlim(-col_w * 0.5 - 0.6, 3.5 * col_w)
    ax.set_ylim(-(rows + 0.6) * row_h, 0.5 * row_h)
    ax.set_axis_off()
    ax.set_title(graph.title, fontsize=12, loc="left")

    def at(node: str) -> tuple[float, float]:
        column, row, _ = graph.nodes[node]
        return column * col_w, -row * row_h

    half = {}  # half the height of each node, for the arrows
    for node, (_, _, text) in graph.nodes.items():
        cx, cy = at(node)
        if node in graph.merges:
            half[node] = 0.17
            ax.add_patch(Circle((cx, cy), 0.17, facecolor="white", edgecolor="black"))
            ax.text(cx, cy, text, ha="center", va="center", fontsize=12)
        elif node in ("in", "out"):
            half[node] = 0.12
            ax.text(cx, cy, text, ha="center", va="center", fontsize=10.5, style="italic")
        else:
            height = max(box_h, 0.15 + 0.16 * (text.count("\n") + 1))
            half[node] = height / 2
            width = box_w * (1.45 if node == "kba" else 1.0)
            ax.add_patch(FancyBboxPatch((cx - width / 2, cy - height / 2), width, height,
                                        boxstyle="round,pad=0.02,rounding_size=0.08",
                                        facecolor="#fdf2e3" if node == "kba" else "#e8f0fb",
                                        edgecolor="#2b5d9c", linewidth=1.1))  # fmt: skip
            ax.text(cx, cy, text, ha="center", va="center", fontsize=9)
    lane = -col_w * 0.5 - 0.2
    for start, end, skip in graph.edges:
        (x0, y0), (x1, y1) = at(start), at(end)
        if skip:
            ax.plot([x0 - 0.5, lane, lane], [y0 - 0.1, y0 - 0.1, y1], color="#c0392b", lw=1.3)
            ax.annotate("", (x1 - 0.17, y1), (lane, y1),
                        arrowprops={"arrowstyle": "-|>", "color": "#c0392b", "lw": 1.3})  # fmt: skip
            lane += 0.25
            continue
        arrow = {"arrowstyle": "-|>", "color": "black", "lw": 1.0}
        if graph.nodes[end][1] - graph.nodes[start][1] > 2:  # past a row: down, then from the side
            ax.plot([x0, x0], [y0 - half[start] - 0.02, y1], color="black", lw=1.0)
            side = half[end] + 0.02 if x0 > x1 else -half[end] - 0.02
            ax.annotate("", (x1 + side, y1), (x0, y1), arrowprops=arrow)
            continue
        ax.annotate(
            "", (x1, y1 + half[end] + 0.02), (x0, y0 - half[start] - 0.02), arrowprops=arrow
        )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def draw_unet(model: UNetInpainter, path: str | Path | None = None):
    """Draw the data path of a built :class:`~restorelab.models.unet_inpainter.UNetInpainter`
    (chapter 8) as a U: encoder blocks down the left, decoder blocks up the right, the skips
    across, the class embedding into every decoder block (FiLM). Each box gives its two convs
    (kernel, filters) and the tensor's size (channels x height x width). Returns the Figure."""
    depth = model.depth
    kernel = model.encoders[0].conv1.kernel_size[0]
    widths = [block.conv2.out_channels for block in model.encoders]
    size = lambda level: "H \u00d7 W" if level == 0 else f"H/{2**level} \u00d7 W/{2**level}"  # noqa: E731
    fig, ax = plt.subplots(figsize=(10.8, 1.2 * (depth + 1.8)))
    ax.set_axis_off()
    ax.set_xlim(0, 10.8)
    ax.set_ylim(-1.35 * depth - 0.6, 1.5)
    ax.set_title(f"class-conditioned U-Net, depth {depth} (chapter 8): "
                 f"{sum(p.numel() for p in model.parameters()):,} parameters", fontsize=12,
                 loc="left")  # fmt: skip
    box = {"boxstyle": "round,pad=0.02,rounding_size=0.08", "linewidth": 1.2}

    def block(x: float, y: float, title: str, detail: str, colour: str) -> None:
        ax.add_patch(FancyBboxPatch((x - 1.65, y - 0.43), 3.3, 0.86, facecolor=colour,
                                    edgecolor="#2b5d9c", **box))  # fmt: skip
        ax.text(x, y + 0.22, title, ha="center", va="center", fontsize=10, fontweight="bold")
        ax.text(x, y - 0.12, detail, ha="center", va="center", fontsize=8.5, linespacing=1.3)

    left, right, arrow = 1.9, 7.3, {"arrowstyle": "-|>", "color": "black", "lw": 1.1}
    in_ch = model.encoders[0].conv1.in_channels
    ax.text(left, 1.15, f"damaged image + mask ({in_ch} \u00d7 H \u00d7 W)", ha="center",
            fontsize=10, style="italic")  # fmt: skip
    ax.annotate("", (left, 0.45), (left, 1.0), arrowprops=arrow)
    conv = f"2 \u00d7 conv {kernel}\u00d7{kernel}"
    for level in range(depth + 1):
        y = -1.35 * level
        x = (left + right) / 2 if level == depth else left
        name = "bottleneck" if level == depth else f"encoder {level + 1}"
        block(x, y, name, f"{conv}, {widths[level]} filters, LeakyReLU\n"
              f"\u2192 {widths[level]} \u00d7 {size(level)}", "#e8f0fb")  # fmt: skip
        if level < depth:
            nx = (left + right) / 2 if level + 1 == depth else left
            ax.annotate("", (nx - (1.0 if level + 1 == depth else 0), y - 1.35 + 0.45),
                        (left, y - 0.45), arrowprops=arrow)  # fmt: skip
            ax.text(left - 0.1, y - 0.68, "max-pool 2", ha="right", fontsize=8.5, color="#444444")
    for level in reversed(range(depth)):
        y = -1.35 * level
        block(right, y, f"decoder {level + 1} (FiLM)", f"{conv}, {widths[level]} filters\n"
              f"\u2192 {widths[level]} \u00d7 {size(level)}", "#fdf1e0")  # fmt: skip
        below = (
            ((left + right) / 2 + 1.0, y - 1.35 + 0.45)
            if level + 1 == depth
            else (right, y - 1.35 + 0.45)
        )
        ax.annotate("", (right, y - 0.45), below, arrowprops=arrow)
        ax.text(right + (0.1 if level + 1 < depth else 0.3), y - 0.68,
                "transposed conv\n2\u00d72, stride 2", fontsize=8.5, va="center", color="#444444")  # fmt: skip
        ax.annotate("", (right - 1.67, y), (left + 1.67, y),
                    arrowprops={**arrow, "color": "#c0392b", "linestyle": "--"})  # fmt: skip
        ax.text((left + right) / 2, y + 0.1, "skip: concatenate", ha="center", fontsize=8.5,
                color="#c0392b")  # fmt: skip
    ax.annotate("", (right, 1.0), (right, 0.45), arrowprops=arrow)
    ax.text(right, 1.15, f"1\u00d71 conv \u2192 restored image ({model.head.out_channels} \u00d7 H \u00d7 W)",
            ha="center", fontsize=10, style="italic")  # fmt: skip
    embed = model.embedding.embedding_dim
    ex, ey = 9.85, -0.675 * (depth - 1)
    ax.text(ex, ey, f"class\n\u2193\nembedding\n({model.num_classes} + 1) \u00d7 {embed}\n\u2193\n"
            "scale, shift\nper decoder", ha="center", va="center", fontsize=8.5, color="#7d3c98",
            bbox={"boxstyle": "round", "facecolor": "#f4ecf7", "edgecolor": "#7d3c98"})  # fmt: skip
    for level in range(depth):
        ax.annotate("", (right + 1.67, -1.35 * level), (ex - 0.55, ey),
                    arrowprops={**arrow, "color": "#7d3c98", "lw": 0.8})  # fmt: skip
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
