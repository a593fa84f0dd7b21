"""The descanning table: one code path and one budget for every row, the stored CSV, the data
layouts, and the 2023 course's numbers kept apart from ours."""

from __future__ import annotations

import math

import pytest
import torch

from restorelab import descanning, metrics
from restorelab.io import write_image

TINY = descanning.Budget(steps=3, batch_size=2, patch_size=16, lr=1e-3)


@pytest.fixture(scope="module")
def pages():
    return descanning.descanning_data(pages=2, val_pages=1, size=64)


def test_every_row_is_trained_with_the_same_budget_and_scored_alike(pages):
    rows = descanning.run_table(
        pages, TINY, rows=["DnCNN", "SRResNet-style x1"], progress=False, tensorboard=False
    )
    assert [r["model"] for r in rows] == [descanning.INPUT_ROW, "DnCNN", "SRResNet-style x1"]
    budget = {(r["data"], r["steps"], r["batch"], r["patch"], r["seed"]) for r in rows}
    assert budget == {("synthetic 2 pages", 3, 2, 16, 0)}
    scan, clean = pages.val[0]
    assert rows[0]["y_mae"] == round(metrics.y_mae(scan, clean), 3)  # the scans, unrestored
    assert rows[0]["params"] == 0 and rows[1]["params"] > 0
    assert all(math.isfinite(r["y_mae"]) and r["y_mae"] > 0 for r in rows)
    again = descanning.run_table(pages, TINY, rows=["DnCNN"], progress=False, tensorboard=False)
    assert again[1] == rows[1]  # same seed, same budget: the same row


def test_rows_build_their_quick_and_full_models():
    rows = ("KBNet", "Restormer", descanning.BASELINE_ROW)
    full = {row: descanning.build_row(row, "full") for row in rows}
    assert all(sum(p.numel() for p in m.parameters()) < 10_000_000 for m in full.values())
    quick = descanning.build_row("SRResNet-style x1")
    assert quick(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20, 24)  # same size in and out
    with pytest.raises(KeyError, match="rows"):
        descanning.build_row("UNet")


def test_a_rows_card_builds_its_model_for_the_submission_contract(tmp_path):
    import json

    from safetensors.torch import save_file

    from restorelab.competition import ContractError, check_model

    model = descanning.build_row(descanning.BASELINE_ROW)
    card = descanning.row_card(descanning.BASELINE_ROW)
    (tmp_path / "model.json").write_text(json.dumps(card))  # tuples become JSON lists
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    assert check_model(tmp_path) == sum(p.numel() for p in model.parameters())
    full = descanning.row_card(descanning.BASELINE_ROW, "full")
    (tmp_path / "model.json").write_text(json.dumps(full))  # other sizes: the weights do not fit
    with pytest.raises(ContractError, match="do not fit"):
        check_model(tmp_path)


def test_store_load_and_match_the_stored_table(tmp_path, pages):
    path = tmp_path / "descanning.csv"
    row = descanning.table_row("DnCNN", None, pages, TINY, "QUICK")
    row |= {"registry": "dncnn", "params": 5, "y_mae": 10.0, "psnr": 20.0}
    descanning.store_rows([row | {"y_mae_tol": 0.05, "psnr_tol": 0.05}], path)
    descanning.store_rows([row | {"y_mae": 9.0}], path)  # the same key: replaced
    stored = descanning.load_table(path)
    assert len(stored) == 1 and stored[0]["y_mae"] == 9.0
    assert stored[0]["y_mae_tol"] == 0.05  # a new measurement keeps the stored tolerance
    assert descanning.matches_stored([row | {"y_mae": 9.04}], path)
    assert not descanning.matches_stored([row | {"y_mae": 9.2}], path)
    assert not descanning.matches_stored([row | {"setting": "full"}], path)
    table = str(descanning.descanning_table("QUICK", path=path))
    assert "Y-MAE (per pixel" in table and "| DnCNN | 5 |" in table


def test_the_2023_course_numbers_have_their_own_table_and_metric():
    text = descanning.course2023_table()
    assert "per-image mean-Y MAE" in text and "2.466" in text and "[-1, 1]" in text
    table = str(descanning.descanning_table("QUICK"))  # the stored table never holds them
    assert "2.466" not in table and "28.5" not in table
    models = {r["model"] for r in descanning.load_table() if r["setting"] == "QUICK"}
    assert models == {descanning.INPUT_ROW, *descanning.ROWS}


def _pages(folder, names, size=24):
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        write_image(folder / f"{name}.png", torch.full((3, size, size), 0.1 * (i + 1)))


def test_course2023_and_descan18k_layouts(tmp_path):
    course = tmp_path / "course"
    for sub in ("train/scan", "train/clean"):
        _pages(course / sub, ["a", "b", "c"])
    _pages(course / "test" / "scan", ["t"])
    data = descanning.descanning_data(course, val_pages=1)
    assert data.name == "2023 course" and len(data.train) == 2 and len(data.val) == 1
    assert torch.allclose(data.val[0][1], torch.full((3, 24, 24), 0.3), atol=1 / 255)
    descan = tmp_path / "descan"
    for split in ("train", "valid", "test"):
        for sub in ("scan", "clean"):
            _pages(descan / split / sub, ["p1", "p2"])
    data = descanning.descanning_data(descan, val_pages=1)
    assert data.name == "DESCAN-18K" and len(data.train) == 2 and len(data.val) == 1
    with pytest.raises(FileNotFoundError, match="DESCAN-18K"):
        descanning.descanning_data(tmp_path / "nothing")
