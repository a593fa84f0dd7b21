"""Figures: several runs on one curves figure; the comparison table of the course."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import io  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from restorelab.comparison import (  # noqa: E402
    SETTINGS,
    comparison_table,
    load_results,
    matches_stored,
)
from restorelab.viz import comparison_figure, curves_figure  # noqa: E402


def history(offset: float) -> list[dict]:
    train = [{"kind": "train", "step": s, "loss": 1.0 / s + offset} for s in (1, 2, 3)]
    return train + [{"kind": "val", "step": 3, "psnr": 30.0 + offset}]


def test_curves_figure_draws_one_line_per_run_and_the_baselines(tmp_path):
    fig = curves_figure(
        {"L1": history(0.0), "L2": history(0.5)}, tmp_path / "c.png", {"bicubic": 29.0}, "psnr"
    )
    loss_ax, val_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["L1", "L2"]
    assert [line.get_label() for line in val_ax.lines] == ["L1", "L2", "bicubic"]
    assert list(val_ax.lines[1].get_ydata()) == [30.5]
    assert (tmp_path / "c.png").stat().st_size > 0
    low, high = val_ax.get_ylim()  # the baseline, the lowest value here, clear of the edge
    assert low < 29.0 - 0.05 * (high - low) and high > 30.5 + 0.05 * (high - low)
    single = curves_figure(history(0.0), metric="psnr")
    assert [line.get_label() for line in single.axes[1].lines] == ["model"]
    above = curves_figure(history(0.0), baselines={"bicubic": 32.0}, metric="psnr").axes[1]
    assert above.get_ylim()[1] > 32.0 + 0.05 * (32.0 - above.get_ylim()[0])  # chapter 1's case


def shown_text_heights(fig, column_px: int = 700) -> list[float]:
    """Pixel height of each text of ``fig`` as the site shows it: at the figure's dpi with a
    tight box (the notebook's inline backend), shrunk to the page's column when wider."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    scale = min(1.0, column_px / Image.open(buffer).size[0])
    texts = [fig._suptitle] if fig._suptitle else []
    for ax in fig.axes:
        texts.append(ax.title)
        if ax.axison:
            texts += [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
    texts = [t for t in texts if t.get_text()]
    return [t.get_fontsize() * fig.dpi / 72 * scale for t in texts]


@pytest.mark.parametrize("count", [3, 5])
def test_figure_text_is_readable_on_the_sites_page(count):
    image = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))
    names = ["noisy 20.17 dB", "non-local means 27.53 dB", "BM3D 28.91 dB", "DnCNN (ours) 28.12 dB"]
    panels = {name: image for name in [*names[: count - 1], "clean"]}
    title = "Sigma 25: in the zoom, compare how much fine texture each method keeps and how flat"
    heights = shown_text_heights(comparison_figure(panels, title=title))
    assert min(heights) >= 9.0
    assert len(heights) == count + 2  # the panels, the zoom's label, the title
    assert min(shown_text_heights(curves_figure(history(0.0), baselines={"x": 29.0}))) >= 9.0


ROW = dict(chapter=2, model="AR-CNN", task="JPEG q10", benchmark="Classic5", metric="grey",
           params=106561, setting="QUICK", psnr=28.0, ssim=0.76)  # fmt: skip


def test_comparison_table_live_rows_replace_stored_ones(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(
        "chapter,model,task,benchmark,metric,params,setting,psnr,ssim,convention,psnr_tol,ssim_tol\n"
        "2,AR-CNN,JPEG q10,Classic5,grey,106561,QUICK,27.50,0.7500,restorelab,0.05,0.002\n"
        "2,AR-CNN,JPEG q10,Classic5,grey,106561,paper,29.03,0.7929,DnCNN paper\n"
        "3,DnCNN-S,Gaussian,Set12,grey,557057,paper,30.44,,DnCNN paper\n"
    )
    table = comparison_table(2, live=[ROW], path=path)
    assert [(r["setting"], r["psnr"]) for r in table.rows] == [("paper", 29.03), ("QUICK", 28.0)]
    assert "| 2 | AR-CNN | JPEG q10 | Classic5 | grey | 106,561 | QUICK | 28.00 | 0.7600 |" in str(
        table
    )
    assert not matches_stored([ROW], path)  # 28.00 now, 27.50 stored
    assert matches_stored([{**ROW, "psnr": 27.52, "ssim": 0.751}], path)
    assert not matches_stored([{**ROW, "model": "ARCNN"}], path)  # no stored twin
    with pytest.raises(ValueError, match="setting"):
        comparison_table(2, live=[{**ROW, "setting": "fast"}], path=path)


def test_stored_comparison_rows_are_well_formed():
    rows = load_results()
    assert {row["setting"] for row in rows} <= set(SETTINGS)
    keys = [(r["chapter"], r["model"], r["benchmark"], r["setting"], r["convention"]) for r in rows]
    assert len(keys) == len(set(keys)), "two stored rows share a key"
    for row in rows:
        assert row["psnr"] is None or 15 < row["psnr"] < 50
        assert row["ssim"] is None or 0 < row["ssim"] <= 1


PAPER_MODELS = {  # the table's model names -> (restorelab model, preset)
    "SRCNN 9-5-5": ("srcnn", "paper"),
    "AR-CNN": ("arcnn", "paper"),
    "DnCNN-S": ("dncnn", "paper"),
    "CDnCNN-B": ("dncnn", "color_blind"),
    "SRResNet": ("srresnet", "paper"),
    "SRGAN": ("srresnet", "paper"),  # SRGAN's generator is SRResNet
    "RRDB (PSNR-trained)": ("rrdbnet", "paper"),
    "KBNet_s": ("kbnet", "paper"),
    "Restormer": ("restormer", "denoising"),  # the Gaussian denoising checkpoints
}


def test_paper_rows_state_the_parameters_of_restorelabs_models():
    from restorelab import models

    for row in load_results():
        if row["setting"] == "paper" and row["params"] is not None:
            name, preset = PAPER_MODELS[row["model"]]
            assert row["params"] == models.count_params(models.build(name, preset)), row


def test_page_style_restores_only_its_own_settings():
    import matplotlib.pyplot as plt

    from restorelab.viz import STYLE, page_style

    before = plt.rcParams["interactive"]
    with page_style():
        assert plt.rcParams["font.size"] == STYLE["font.size"]
        plt.rcParams["interactive"] = not before  # what Jupyter's backend switch does inside
    try:
        assert plt.rcParams["interactive"] is (not before)
    finally:
        plt.rcParams["interactive"] = before


def test_basis_separation_is_the_distance_between_the_letters_and_the_papers_bases():
    from restorelab.viz import basis_separation

    letters = torch.zeros(4, 4, dtype=torch.bool)
    letters[:2] = True
    assert basis_separation(torch.full((4, 4), 3), letters) == 0.0  # one basis everywhere
    bases = letters.long() * 5  # letters basis 5, paper basis 0
    assert basis_separation(bases, letters) == 1.0
    bases[0] = 0  # half the letters take the paper's basis
    assert basis_separation(bases, letters) == pytest.approx(0.5)


def test_kba_maps_cover_an_odd_sized_scan_and_leave_no_hook_behind():
    from restorelab.descanning import build_row
    from restorelab.viz import kba_basis_figure, kba_dominant_bases

    torch.manual_seed(0)
    model = build_row("KBNet", "QUICK").eval()
    scan = torch.rand(3, 21, 19)  # the U-Net pads it: the maps are cropped back
    maps = kba_dominant_bases(model, scan)
    assert list(maps) == ["first block", "last block"]
    for layer, bases in zip(
        (model.encoders[0][0].kba, model.decoders[-1][-1].kba), maps.values(), strict=True
    ):
        assert bases.shape == (21, 19) and bases.dtype == torch.int64
        assert 0 <= bases.min() and bases.max() < layer.w.shape[1]  # an index of one of its bases
        assert not layer._forward_hooks
    figure = kba_basis_figure(scan, maps, title="t")
    assert len(figure.axes) == 3 and "bases dominate" in figure.axes[1].get_title()
    matplotlib.pyplot.close(figure)
