"""Reference checkpoints: every registered one loads and reproduces its model card's numbers."""

from __future__ import annotations

import hashlib
import json
import re
import runpy
import shutil

import pytest
import torch

from restorelab import pretrained
from restorelab.data import benchmark_dir
from restorelab.io import file_sha256
from restorelab.models import count_params

NAMES = pretrained.available()
PACKAGE = pretrained.WEIGHTS  # the package's own cards, before a test points WEIGHTS elsewhere


def _missing_benchmarks(name: str) -> list[str]:
    missing = []
    for bench in pretrained.REFERENCES[name].benchmarks:
        try:
            benchmark_dir(bench)
        except FileNotFoundError:
            missing.append(bench)
    return missing


def test_registry_names_the_four_chapter_models() -> None:
    assert NAMES == ["arcnn-q10", "dncnn-s25", "msrresnet-x4", "srcnn-x2"]


@pytest.mark.parametrize("name", NAMES)
def test_stored_weights_are_small_safetensors_with_a_card(name: str) -> None:
    path = pretrained.weights_path(name)
    assert path.suffix == ".safetensors" and path.stat().st_size <= 4 * 2**20
    card = pretrained.info(name)
    for key in ("command", "steps", "batch_size", "wall_seconds", "hardware", "commit",
                "evaluation", "convention", "data"):  # fmt: skip
        assert card[key], f"{name}: the card has no {key}"
    assert card["command"].startswith("restorelab train ")
    assert f"--steps {card['steps']}" in card["command"]
    model = pretrained.load(name)
    assert not model.training
    assert count_params(model) == card["parameters"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_reproduces_its_card(name: str) -> None:
    missing = _missing_benchmarks(name)
    if missing:
        pytest.skip(f"benchmarks {missing} not found (set RESTORELAB_DATA or use ../shared)")
    card = pretrained.info(name)["evaluation"]
    measured = pretrained.evaluate(name)
    for bench, rows in card.items():
        for who in ("model", "input"):
            for metric, value in rows[who].items():
                tolerance = 0.01 if "psnr" in metric else 1e-4
                assert measured[bench][who][metric] == pytest.approx(value, abs=tolerance), (
                    f"{name} {bench} {who} {metric}"
                )


@pytest.mark.parametrize("name", NAMES)
def test_reference_beats_its_input_on_its_first_benchmark(name: str) -> None:
    card = pretrained.info(name)["evaluation"]
    bench = pretrained.REFERENCES[name].benchmarks[0]
    metric = next(iter(card[bench]["model"]))
    assert card[bench]["model"][metric] > card[bench]["input"][metric] + 0.5


@pytest.mark.parametrize("name", NAMES)
def test_chapters_read_the_card_and_its_budget(name: str) -> None:
    card = pretrained.info(name)
    assert pretrained.scores(name) == card["evaluation"]
    budget = pretrained.budget(name)
    assert f"{card['steps']:,} steps of {card['batch_size']} patches" in budget
    assert f"{card['wall_seconds'] / 60:.1f} min on {card['hardware']}" in budget
    assert budget in pretrained.card_markdown(name)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="srcnn-x2"):
        pretrained.load("srcnn-x3")


def _hosted(monkeypatch, tmp_path, name: str, url: str, sha256: str) -> None:
    ref = pretrained.REFERENCES[name]
    monkeypatch.setitem(
        pretrained.REFERENCES,
        name,
        pretrained.Reference(**{**ref.__dict__, "url": url, "sha256": sha256}),
    )
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "package")
    monkeypatch.setattr(pretrained, "CACHE", tmp_path / "cache")


def test_hosted_weights_are_downloaded_once_and_checked(monkeypatch, tmp_path) -> None:
    source = pretrained.weights_path("srcnn-x2")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    _hosted(monkeypatch, tmp_path, "srcnn-x2", source.as_uri(), digest)
    model = pretrained.load("srcnn-x2")
    assert (tmp_path / "cache" / "srcnn-x2.safetensors").exists()
    x = torch.rand(1, 1, 24, 24)
    reference = pretrained.REFERENCES["srcnn-x2"]
    assert reference.url == source.as_uri()
    assert model(x).shape == x.shape


def test_hosted_weights_with_a_wrong_sha256_are_refused(monkeypatch, tmp_path) -> None:
    source = pretrained.weights_path("srcnn-x2")
    _hosted(monkeypatch, tmp_path, "srcnn-x2", source.as_uri(), "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        pretrained.load("srcnn-x2")
    assert not (tmp_path / "cache" / "srcnn-x2.safetensors").exists()


def test_offline_download_names_the_missing_file(monkeypatch, tmp_path) -> None:
    _hosted(monkeypatch, tmp_path, "srcnn-x2", "http://127.0.0.1:9/srcnn-x2.safetensors", "0" * 64)
    with pytest.raises(FileNotFoundError, match=r"srcnn-x2\.safetensors: missing"):
        pretrained.load("srcnn-x2")


def test_missing_weights_without_a_url_say_how_to_get_them(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    with pytest.raises(FileNotFoundError, match="train_references.py"):
        pretrained.load("dncnn-s25")


def test_corrupt_weights_name_the_file(monkeypatch, tmp_path) -> None:
    shutil.copy(pretrained.card_path("dncnn-s25"), tmp_path)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    (tmp_path / "dncnn-s25.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"dncnn-s25\.safetensors: damaged weights: their sha256"):
        pretrained.load("dncnn-s25")


@pytest.mark.parametrize("name", NAMES)
def test_each_card_records_the_sha256_of_its_weights(name: str) -> None:
    assert pretrained.info(name)["sha256"] == file_sha256(pretrained.weights_path(name))


def test_one_flipped_byte_is_refused_naming_the_file(monkeypatch, tmp_path) -> None:
    for suffix in (".json", ".safetensors"):
        shutil.copy(pretrained.WEIGHTS / f"srcnn-x2{suffix}", tmp_path)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    pretrained.load("srcnn-x2")  # the copy loads
    weights = tmp_path / "srcnn-x2.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01  # one bit of one weight: the file still parses
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(weights))}: damaged weights: their "
                       r"sha256 is not the one recorded in its model card srcnn-x2\.json "
                       r"\(7e6d793cd09e\.\.\., found [0-9a-f]{12}\.\.\.\); reinstall restorelab$"):  # fmt: skip
        pretrained.load("srcnn-x2")


def test_a_card_without_a_sha256_is_refused(monkeypatch, tmp_path) -> None:
    card = json.loads(pretrained.card_path("srcnn-x2").read_text())
    del card["sha256"]
    (tmp_path / "srcnn-x2.json").write_text(json.dumps(card))
    shutil.copy(pretrained.WEIGHTS / "srcnn-x2.safetensors", tmp_path)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    with pytest.raises(ValueError, match="srcnn-x2.json records no sha256"):
        pretrained.load("srcnn-x2")


def test_running_the_module_lists_the_checkpoints_and_their_scores(capsys) -> None:
    runpy.run_path(pretrained.__file__, run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == NAMES
    srcnn = pretrained.info("srcnn-x2")["evaluation"]["Set5"]
    assert f"Set5 psnr_y {srcnn['model']['psnr_y']:.2f} dB (input " in lines[-1]


def test_cli_evaluates_a_reference_by_name(capsys) -> None:
    from restorelab.cli import main

    if _missing_benchmarks("srcnn-x2"):
        pytest.skip("Set5 not found (set RESTORELAB_DATA or use ../shared)")
    assert main(["eval", "srcnn-x2", "--benchmark", "Set5"]) == 0
    expected = pretrained.info("srcnn-x2")["evaluation"]["Set5"]["model"]["psnr_y"]
    row = next(line for line in capsys.readouterr().out.splitlines() if "| srcnn-x2 |" in line)
    assert float(row.split("|")[2]) == pytest.approx(expected, abs=1e-4)


def test_descanning_rows_come_scans_first_then_from_the_lowest_y_mae() -> None:
    from restorelab.descanning import INPUT_ROW

    rows = pretrained.descanning_rows()
    if len(rows) < 3:
        pytest.skip("fewer than two descanning references are published")
    assert rows[0]["model"] == INPUT_ROW
    maes = [row["y_mae"] for row in rows[1:]]
    assert maes == sorted(maes) and all(mae < rows[0]["y_mae"] for mae in maes)


def _kbnet_card(monkeypatch, tmp_path) -> None:
    """A package folder with descanning-kbnet's card and no weights (as on CI and the site)."""
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(pretrained, "CACHE", tmp_path / "cache")
    pretrained.WEIGHTS.mkdir()
    card = json.loads((PACKAGE / "descanning-kbnet.json").read_text())
    pretrained.card_path("descanning-kbnet").write_text(json.dumps(card))


def test_kbnet_basis_maps_without_weights_come_from_the_file_stored_for_their_scan(
    monkeypatch, tmp_path
) -> None:
    """Chapter 5's reference maps, on a machine without the 12 MB of weights: the stored maps,
    initial weights first, for the scan they were computed on and no other."""
    from restorelab.descanning import build_row

    _kbnet_card(monkeypatch, tmp_path)
    generator = torch.Generator().manual_seed(0)
    scan = torch.rand(3, 20, 28, generator=generator)
    with pytest.raises(
        FileNotFoundError, match="descanning-kbnet.bases.safetensors: no stored maps"
    ):
        pretrained.kba_basis_maps("descanning-kbnet", scan)

    trained = build_row("KBNet", "QUICK", seed=1).eval()  # any KBNet stands in for the reference
    maps = pretrained.kba_basis_maps("descanning-kbnet", scan, trained)
    steps = pretrained.info("descanning-kbnet")["steps_done"]
    assert list(maps) == [pretrained.STEP_0, f"after {steps} steps"]
    assert all(bases.shape == (20, 28) for layers in maps.values() for bases in layers.values())
    stored = pretrained.save_kba_basis_maps("descanning-kbnet", scan, maps)
    assert (
        stored == pretrained.basis_maps_path("descanning-kbnet") and stored.stat().st_size < 10_000
    )

    again = pretrained.kba_basis_maps("descanning-kbnet", (scan + 0.001).clamp(0, 1))  # 8-bit equal
    assert list(again) == list(maps)  # the initial weights first, though "after" sorts before "at"
    for label, layers in maps.items():
        assert list(again[label]) == list(layers)
        assert all(torch.equal(again[label][layer], bases) for layer, bases in layers.items())
    with pytest.raises(
        FileNotFoundError, match="bases.safetensors: the maps stored .* another scan"
    ):
        pretrained.kba_basis_maps("descanning-kbnet", scan.flip(-1))
    with pytest.raises(FileNotFoundError, match="another scan"):
        pretrained.kba_basis_maps("descanning-kbnet", scan[:, :16])


def test_the_published_kbnet_maps_hold_chapter_5s_scan() -> None:
    """The stored maps belong to the page chapter 5 shows in QUICK mode (a change of the
    synthetic pages would silently leave the chapter without its figure)."""
    from restorelab.descanning import descanning_data

    if not pretrained.basis_maps_path("descanning-kbnet").exists():
        pytest.skip("descanning-kbnet is not published with its maps")
    scan = descanning_data().val[0][0]
    maps = pretrained.kba_basis_maps("descanning-kbnet", scan)
    assert len(maps) == 2 and all(
        set(layers) == {"first block", "last block"} for layers in maps.values()
    )
