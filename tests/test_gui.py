"""The interactive demo (restorelab.gui): its plain functions, the served app, the page in a browser.

The pipeline tests need no Gradio. The app tests start the demo on 127.0.0.1 and call it with
``gradio_client`` (skipped without the ``gui`` extra); the page test opens it in Debian's
headless Chromium (skipped without it) through the DevTools driver of the site test, waits for
the example the page restores on load, and keeps a screenshot in ``_build/screenshots/gui.png``.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import quiet_port
from PIL import Image

from restorelab import pretrained
from restorelab.cli import main
from restorelab.gui import inputs, pipeline
from restorelab.gui.inputs import DemoError
from restorelab.gui.pipeline import Request, handle, load_restorer, restore
from restorelab.train import save_atomic

ROOT = Path(__file__).resolve().parents[1]


def crop(name: str = "astronaut", size: int = 64) -> torch.Tensor:
    return inputs.sample_image(name)[:, 100 : 100 + size, 100 : 100 + size]


def png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_uploads_are_checked_before_they_are_restored(tmp_path, monkeypatch):
    garbage = tmp_path / "photo.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 50)
    with pytest.raises(DemoError, match="photo.png: not an image file"):
        inputs.read_upload(garbage)
    wide = png(tmp_path / "wide.png", np.zeros((40, 3000), np.uint8))
    with pytest.raises(DemoError, match="3000x40 pixels; the demo takes images up to 2048"):
        inputs.read_upload(wide)
    tiny = png(tmp_path / "tiny.png", np.zeros((8, 100, 3), np.uint8))
    with pytest.raises(DemoError, match="at least 32"):
        inputs.read_upload(tiny)
    grey = png(tmp_path / "grey.png", np.full((40, 50), 200, np.uint8))
    image = inputs.read_upload(grey)
    assert image.shape == (3, 40, 50) and torch.allclose(image, torch.full_like(image, 200 / 255))
    noise = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    heavy = png(tmp_path / "heavy.png", noise)  # about 30 kB
    monkeypatch.setattr(inputs, "MAX_UPLOAD_MB", 0.01)
    with pytest.raises(DemoError, match="heavy.png: 0.03 MB; the demo takes files up to 0.01 MB"):
        inputs.read_upload(heavy)


@pytest.mark.slow
def test_every_task_restores_and_is_scored_against_the_clean_image():
    clean = crop()
    for task in pipeline.TASKS:
        image = crop("page") if task == "descan" else clean
        result = restore(task, image, load_restorer(task, "default"), seed=1)
        scale = 2 if task == "sr" else 1
        assert result.output.shape == (3, 64, 64)
        assert result.degraded.shape == (3, 64 // scale, 64 // scale)
        psnr = [name for name in result.metrics["output"] if name.startswith("PSNR")][0]
        before = result.metrics["bicubic" if task == "sr" else "input"][psnr]
        gain = result.metrics["output"][psnr] - before
        if task == "descan":  # the honest default: no descanner ships, the scan is shown as is
            assert gain == 0 and torch.equal(result.output, result.degraded)
        else:
            assert gain > {"sr": 0.3, "jpeg": 0.3, "denoise": 5, "inpaint": 5}[task], task


def test_tasks_without_a_trained_model_say_so():
    for task, spec in pipeline.TASKS.items():
        default_label = pipeline.model_choices(task)[0][0]
        restorer = load_restorer(task, "default")
        assert restorer.trained == (spec.reference is not None)
        if spec.reference is None:
            assert "no trained model ships" in default_label
            assert "classical baseline" in default_label and restorer.name.startswith("baseline")
            assert "ships no trained model" in pipeline.task_note(task)


def test_damage_is_seeded_and_inpainting_keeps_the_known_pixels():
    clean, restorer = crop(), load_restorer("inpaint", "baseline")
    first, _ = pipeline.damage("denoise", clean, restorer, seed=3)
    again, _ = pipeline.damage("denoise", clean, restorer, seed=3)
    other, _ = pipeline.damage("denoise", clean, restorer, seed=4)
    assert torch.equal(first, again) and not torch.equal(first, other)
    mask = inputs.random_mask((64, 64), seed=0)
    result = restore("inpaint", clean, restorer, mask=mask)
    known = mask.expand(3, -1, -1) == 0
    assert torch.allclose(result.output[known], clean[known], atol=1e-6)
    assert (result.degraded[~known] == 0).all()


def test_drawn_layers_become_the_mask_at_the_image_size():
    layer = np.zeros((50, 100, 4), np.uint8)  # the editor's canvas: half the image's size
    layer[:, :50, 3] = 255  # the left half painted
    mask = inputs.mask_from_layers([layer], (100, 200))
    assert mask.shape == (1, 100, 200)
    assert mask[:, :, :100].eq(1).all() and mask[:, :, 100:].eq(0).all()
    with pytest.raises(DemoError, match="no mask drawn"):
        inputs.mask_from_layers([np.zeros((50, 100, 4), np.uint8)], (100, 200))


def test_large_images_are_restored_in_tiles_without_seams(monkeypatch):
    image = crop(size=160)
    whole = restore("sr", image, load_restorer("sr", "default")).output
    monkeypatch.setattr(pipeline, "TILE", 96)  # SRCNN's 160-pixel input now takes 4 tiles
    tiled = restore("sr", image, load_restorer("sr", "default")).output
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_self_ensemble_averages_the_eight_flips_and_rotations_of_the_model():
    image = crop(size=96)
    plain = load_restorer("sr", "default")
    averaged = load_restorer("sr", "default", self_ensemble=True)
    assert averaged.name == "srcnn-x2 with self-ensemble (x8)" and averaged.trained
    lr, hr = pipeline.damage("sr", image, plain)
    model, task = pretrained.load("srcnn-x2"), pretrained.task("srcnn-x2")
    expected = task.restore(model, lr, tile=pipeline.TILE, overlap=pipeline.OVERLAP,
                            self_ensemble=True)  # fmt: skip
    assert torch.equal(averaged.run(lr, None), expected)
    assert not torch.equal(plain.run(lr, None), expected)  # the flag reaches the model
    passes = []
    status, result = handle(Request("sr", self_ensemble=True), progress=lambda *p: passes.append(p))
    assert status.startswith("Restored with **srcnn-x2 with self-ensemble (x8)**"), status
    assert passes == [(done, 8) for done in range(1, 9)]  # the page's progress bar: one per turn
    status, _ = handle(Request("jpeg", "baseline", self_ensemble=True))
    assert status.endswith("Self-ensemble is for trained models: not used."), status


def test_zoom_shows_the_same_region_of_images_of_different_sizes():
    hr = torch.zeros(3, 64, 64)
    hr[:, 40:48, 8:16] = 1  # a white square in the lower left
    lr = hr[:, ::2, ::2]
    small, large = pipeline.zoom([lr, hr], centre=(0.19, 0.69), fraction=0.25, size=32)
    assert small.shape == large.shape == (32, 32, 3)
    assert (small > 127).mean() == pytest.approx((large > 127).mean(), abs=0.05)
    assert (large > 127).mean() > 0.2


def test_bad_requests_come_back_as_messages(tmp_path):
    garbage = tmp_path / "broken.jpg"
    garbage.write_bytes(b"\xff\xd8\xff garbage")
    status, result = handle(Request("sr", upload=str(garbage)))
    assert result is None and status.startswith("**Refused:** broken.jpg: not an image")
    status, _ = handle(Request("sr", choice="/etc/passwd"))  # not offered: never loaded
    assert "is not a model of this task" in status
    status, _ = handle(Request("inpaint", degrade_first=False))
    assert "needs its mask" in status
    status, _ = handle(Request("sr", choice="dncnn-s25"))
    assert status.startswith("**Refused:**")
    status, result = handle(Request("jpeg", choice="baseline", sample="coins"))
    assert status.startswith("Restored with **baseline: none: the JPEG itself** (a classical")
    assert set(result.metrics) == {"input", "output"}


def checkpoint(path: Path, state: dict, extra: dict) -> Path:
    save_atomic({"model": state, "config": {"extra": extra}}, path)
    return path


def test_training_checkpoints_load_for_their_own_task_only(tmp_path):
    from restorelab import models

    kwargs = {"in_channels": 3, "out_channels": 3, "depth": 3, "features": 8}
    net = models.build("dncnn", "paper", **kwargs)
    extra = {"model": "dncnn", "preset": "paper", "model_kwargs": kwargs,
             "task": {"name": "denoise", "sigma": 25.0, "sigma_range": None,
                      "channels": "rgb", "seed": 0}}  # fmt: skip
    path = checkpoint(tmp_path / "best.pt", net.state_dict(), extra)
    choices = [value for _, value in pipeline.model_choices("denoise", [str(path)])]
    assert str(path) in choices
    status, result = handle(Request("denoise", str(path), "coins"), [str(path)])
    assert status.startswith("Restored with **best.pt** (a trained model)"), status
    status, _ = handle(Request("sr", str(path)), [str(path)])
    assert "trained for Denoising, not for super-resolution" in status


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/restorelab-gui-pwned"),))


def test_a_pickled_object_in_a_checkpoint_is_never_run(tmp_path):
    Path("/tmp/restorelab-gui-pwned").unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "config": {"extra": {}}}, path)
    status, result = handle(Request("descan", str(path), "page"), [str(path)])
    assert result is None and "holds Python objects other than weights" in status
    assert not Path("/tmp/restorelab-gui-pwned").exists()


def test_without_gradio_the_page_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "restorelab.gui.app", raising=False)
    with pytest.raises(ImportError, match=r'pip install "restorelab\[gui\]"'):
        importlib.import_module("restorelab.gui.app")
    monkeypatch.delitem(sys.modules, "restorelab.gui.app", raising=False)  # no half import kept


def test_cli_refuses_a_missing_checkpoint(capsys):
    assert main(["gui", "--checkpoint", "missing.pt"]) == 2
    assert "missing.pt: no such checkpoint file" in capsys.readouterr().err


# ---- the served app (needs the gui extra) -------------------------------------------------


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("gradio", reason='the gui extra is not installed (pip install ".[gui]")')
    from restorelab.gui import launch

    port = quiet_port()
    app = launch(host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.mark.slow
def test_the_app_answers_gradio_client_on_the_loopback(served, tmp_path):
    pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    settings = (True, False, 0, "random mask", None, None, 0.5, 0.5, 0.25)
    reply = client.predict("coins", None, "sr", "default", *settings, api_name="/restore")
    status, degraded, output, *zooms, table = reply
    assert status.startswith("Restored with **srcnn-x2** (a trained model)"), status
    with Image.open(degraded) as lr, Image.open(output) as sr:
        assert sr.size == (2 * lr.size[0], 2 * lr.size[1])
    assert all(zoom is not None for zoom in zooms) and "PSNR (Y)" in table
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    reply = client.predict("coins", handle_file(str(broken)), "sr", "default", *settings,
                           api_name="/restore")  # fmt: skip
    assert reply[0].startswith("**Refused:** broken.png: not an image") and reply[2] is None
    layer = np.zeros((150, 200, 4), np.uint8)  # drawn on a canvas half the photo's size
    layer[50:75, 50:100, 3] = 255
    editor = {"background": None, "layers": [handle_file(str(png(tmp_path / "l.png", layer)))],
              "composite": None}  # fmt: skip
    reply = client.predict("coins", None, "inpaint", "default", True, False, 0, "drawn mask",
                           editor, None, 0.5, 0.5, 0.25, api_name="/restore")  # fmt: skip
    assert reply[0].startswith("Restored with **baseline: biharmonic"), reply[0]
    with Image.open(reply[1]) as damaged, Image.open(reply[2]) as restored:
        damaged, restored = np.asarray(damaged), np.asarray(restored)
    holes = damaged.max(-1) == 0  # shown losslessly (PNG): the holes are exactly 0
    assert holes[105:148, 100:188].all()  # the painted box, scaled to the 303x384 coins
    assert holes.mean() == pytest.approx(25 * 50 / (150 * 200), rel=0.1)
    assert restored[holes].mean() > 20  # filled in from the surroundings


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(served, tmp_path):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium (apt-get install chromium; scripts/setup.sh does it as root)")
    from test_site import WIDTH, Chromium, own_errors

    browser = Chromium(executable, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.open(served)
        deadline = time.monotonic() + 90
        state = {}
        while time.monotonic() < deadline:  # the page restores an example when it opens
            state = browser.evaluate(PAGE_STATE)
            if "Restored with" in state["text"] and set(SHOWN_IMAGES) <= set(state["images"]):
                break  # each image loads on its own: wait for all five, not any two
            time.sleep(0.5)
        shot = ROOT / "_build" / "screenshots" / "gui.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(shot)
        errors = own_errors(browser.events, served)
    finally:
        browser.close()
    assert state["title"] == "restorelab: interactive restoration demo"
    for label in ("Sample image", "Task", "Model", "Input (degraded)", "Output", "Zoom: output"):
        assert label in state["text"], label
    assert "Restored with **" not in state["text"] and "Restored with srcnn-x2" in state["text"]
    widths = state["images"]
    assert set(SHOWN_IMAGES) <= set(widths), widths
    assert widths["Output"] == 2 * widths["Input (degraded)"] > 0, widths  # x2 super-resolution
    assert all(widths[label] == 256 for label in SHOWN_IMAGES if label.startswith("Zoom")), widths
    assert not errors, errors
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert image.width == WIDTH and image.height > 600
    assert pixels.std() > 20  # not a blank page: text, widgets and the two images


# PAGE_STATE["images"]: each loaded image's natural width, keyed by its component's label
SHOWN_IMAGES = ("Input (degraded)", "Output", "Zoom: input", "Zoom: output", "Zoom: clean original")
PAGE_STATE = """(() => ({
  title: document.title,
  text: document.body.innerText,
  images: Object.fromEntries([...document.images]
      .filter(img => img.complete && img.naturalWidth > 0 && img.src.includes("file="))
      .map(img => [img.closest(".block")?.querySelector('[data-testid="block-label"]')?.innerText,
                   img.naturalWidth])),
}))()"""
