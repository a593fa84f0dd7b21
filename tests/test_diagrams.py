"""Data-path diagrams: each model chapter's diagram renders and names every stage of its model."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from torch import nn  # noqa: E402

from restorelab import models  # noqa: E402
from restorelab.diagrams import Skip, data_path, draw_data_path  # noqa: E402

DNCNN = ["first layer", "middle layer", "noise estimate f(y)"]
MSRRESNET = ["head", "residual block", "sub-pixel upsampling \u00d72", "high-resolution conv"]
CHAPTER_MODELS = {  # what chapters 1-4 draw: (model name, build kwargs) -> stage names in order
    ("srcnn", ()): ["patch extraction", "non-linear mapping", "reconstruction"],
    ("arcnn", ()): ["feature extraction", "feature enhancement", "mapping", "reconstruction"],
    ("dncnn", ()): DNCNN,
    ("dncnn", (("depth", 8), ("features", 32), ("batch_norm", False))): DNCNN,
    ("msrresnet", ()): [*MSRRESNET, "output conv"],
    ("msrresnet", (("features", 32), ("num_blocks", 4))): [*MSRRESNET, "output conv"],
    ("srresnet", ()): ["head", "residual block", "body conv", MSRRESNET[2], "output conv"],
}


def texts(fig) -> str:
    return "\n".join(text.get_text() for ax in fig.axes for text in ax.texts)


@pytest.mark.parametrize("key", CHAPTER_MODELS, ids=[f"{n}{dict(k)}" for n, k in CHAPTER_MODELS])
def test_each_diagram_renders_and_names_every_stage(key):
    name, kwargs = key
    model = models.build(name, **dict(kwargs))
    spec = data_path(model)
    assert [stage.name for stage in spec.stages] == CHAPTER_MODELS[key]
    fig = draw_data_path(model)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.tell() > 10_000  # something was drawn
    drawn = texts(fig)
    for stage in spec.stages:
        assert stage.name in drawn
        assert f"conv {stage.kernel}\u00d7{stage.kernel}, {stage.filters} filter" in drawn
    for skip in spec.skips:
        assert skip.label in drawn


def test_stages_are_read_off_the_model_not_assumed():
    convs = lambda model: [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # noqa: E731
    for name in ("srcnn", "arcnn"):
        model = models.build(name)
        spec = data_path(model)
        assert [(s.kernel, s.filters) for s in spec.stages] == [
            (conv.kernel_size[0], conv.out_channels) for conv in convs(model)
        ]
    small = data_path(models.build("dncnn", depth=8, features=32, batch_norm=False))
    assert [s.repeat for s in small.stages] == [1, 6, 1] and small.stages[1].after == "ReLU"
    assert data_path(models.build("dncnn")).stages[1].after == "BN, ReLU"
    assert "DnCNN, 17 layers" in data_path(models.build("dncnn")).title
    blocks = data_path(models.build("msrresnet", features=32, num_blocks=4)).stages[1]
    assert (blocks.repeat, blocks.filters) == (4, 32)


def test_skips_join_where_the_models_add_them():
    msr = data_path(models.build("msrresnet"))
    assert msr.skips == (
        Skip(1, 1, "x + F(x)"),
        Skip(0, len(msr.stages) - 1, "global skip: bilinear \u00d74 of the input"),
    )
    upsampling = msr.stages[2]
    assert (upsampling.repeat, upsampling.upscale, upsampling.filters) == (2, 2, 256)
    assert "4h \u00d7 4w" in texts(draw_data_path(msr))  # the shapes follow the upsampling
    dncnn = data_path(models.build("dncnn"))
    assert [(s.start, s.end, s.sign) for s in dncnn.skips] == [(0, 2, "\u2212")]
    srresnet = data_path(models.build("srresnet"))
    assert [(s.start, s.end) for s in srresnet.skips] == [(1, 1), (1, 2)]


def test_models_without_a_diagram_are_refused_by_name():
    with pytest.raises(TypeError, match="no data-path diagram for Sequential"):
        data_path(nn.Sequential(nn.Conv2d(1, 1, 3)))


def test_kbnet_block_graph_reads_the_built_block(tmp_path):
    from restorelab.diagrams import draw_block_graph, kbblock_graph
    from restorelab.models.kbnet import KBBlock

    graph = kbblock_graph(KBBlock(16, lightweight=True))
    texts = " ".join(text for _, _, text in graph.nodes.values())
    assert "x: 16 \u00d7 H" in texts and "32 maps" in texts and "grouped 3\u00d73 conv" in texts
    assert "grouped 5\u00d75" in " ".join(
        t for _, _, t in kbblock_graph(KBBlock(16)).nodes.values()
    )
    assert {(a, b) for a, b, skip in graph.edges if skip} == {("in", "add1"), ("add1", "add2")}
    draw_block_graph(KBBlock(16), tmp_path / "block.png")
    assert (tmp_path / "block.png").stat().st_size > 10_000


@pytest.mark.parametrize("depth", [2, 4])
def test_unet_diagram_names_every_level_and_its_widths(depth):
    from restorelab.diagrams import draw_unet

    model = models.build("unet_inpainter", features=8, depth=depth, num_classes=5, embed_dim=4)
    fig = draw_unet(model)
    text = texts(fig) + fig.axes[0].get_title(loc="left")
    for level in range(depth):
        assert f"encoder {level + 1}" in text and f"decoder {level + 1} (FiLM)" in text
        assert f"{8 * 2**level} filters" in text
    assert "bottleneck" in text and f"{8 * 2**depth} filters" in text
    assert f"{models.count_params(model):,} parameters" in text and "(5 + 1)" in text


def test_unet_diagram_text_stays_inside_its_boxes():
    """Chapter 8's full U-Net (32 filters, depth 4: up to 512 filters): every label drawn in a
    block fits inside the block, as rendered."""
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.text import Annotation

    from restorelab.diagrams import draw_unet

    model = models.build("unet_inpainter", features=32, depth=4, num_classes=22, embed_dim=64)
    fig = draw_unet(model)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 2 * 4 + 1  # four encoders, the bottleneck, four decoders
    placed = 0
    for text in ax.texts:
        if isinstance(text, Annotation) or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        centre = ((extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2)
        for box in boxes:
            if box.contains(*centre):
                placed += 1
                assert box.x0 <= extent.x0 and extent.x1 <= box.x1, text.get_text()
                assert box.y0 <= extent.y0 and extent.y1 <= box.y1, text.get_text()
    assert placed == 2 * len(boxes)  # a title and a detail in each block
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("lightweight", [False, True])
def test_kbnet_block_arrows_pass_no_box(lightweight):
    """Chapter 5's block diagram: no arrow or skip line runs through a box (a branch that passes
    the KBA row goes around it)."""
    import numpy as np
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.text import Annotation

    from restorelab.diagrams import draw_block_graph
    from restorelab.models.kbnet import KBBlock

    fig = draw_block_graph(KBBlock(16, lightweight=lightweight))
    ax = fig.axes[0]
    boxes = [(p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height())
             for p in ax.patches if isinstance(p, FancyBboxPatch)]  # fmt: skip
    segments = [(a.xyann, a.xy) for a in ax.texts if isinstance(a, Annotation)]
    for line in ax.lines:
        points = line.get_xydata()
        segments += list(zip(points[:-1], points[1:], strict=True))
    assert len(boxes) == 10 and len(segments) > 20  # every node but in, out and the merges
    for start, end in segments:
        for t in np.linspace(0.02, 0.98, 200):
            x, y = (1 - t) * np.asarray(start) + t * np.asarray(end)
            crossed = [b for b in boxes if b[0] < x < b[2] and b[1] < y < b[3]]
            assert not crossed, f"the segment {start} -> {end} runs through the box {crossed[0]}"
    matplotlib.pyplot.close(fig)
