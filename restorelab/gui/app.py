"""The demo's page: Gradio widgets wired to :mod:`restorelab.gui.pipeline` (taught in chapter 8).

Needs the ``gui`` extra (``pip install "restorelab[gui]"``). Every handler turns widget values
into plain values, calls the pipeline and turns the result back; refusals and errors come back
as a status line in the page. The *Restore* button is also the API endpoint ``/restore``
(``gradio_client``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from restorelab.gui.inputs import MAX_SIDE, MAX_UPLOAD_MB, SAMPLES, DemoError, input_image
from restorelab.gui.pipeline import (
    DEFAULT,
    TASKS,
    Request,
    handle,
    metrics_markdown,
    model_choices,
    task_note,
    zoom,
)
from restorelab.io import IMAGE_SUFFIXES, to_uint8

try:
    import gradio as gr
except ImportError as error:  # the extra is missing: say how to install it
    raise ImportError(
        'restorelab gui needs Gradio, an optional extra: pip install "restorelab[gui]" '
        "(the tested versions are in requirements.txt)"
    ) from error

TITLE = "restorelab: interactive restoration demo"
RANDOM_MASK, DRAWN_MASK = "random mask", "drawn mask"
INTRO = f"""# {TITLE}
Pick a sample or upload an image (up to {MAX_UPLOAD_MB} MB and {MAX_SIDE} pixels on the longer
side), pick a task and a model, and press **Restore**. With *degrade it first* the image is
treated as clean: the task damages it, the model restores it, and the metrics compare the
output with the original. Large images go through tiled inference."""


def _editor_value(sample: str | None, upload: str | None) -> dict | None:
    """The mask editor's background: the chosen image (None when it cannot be read)."""
    try:
        image = input_image(sample, upload)
    except DemoError:
        return None
    return {"background": to_uint8(image), "layers": [], "composite": None}


def _layers(editor: dict | None, mode: str) -> list[np.ndarray] | None:
    if mode != DRAWN_MASK:
        return None
    return list((editor or {}).get("layers") or [])


def build_app(
    checkpoints: Sequence[str] = (), device: str = "cpu", start_task: str = "sr"
) -> gr.Blocks:
    """The page, opened on ``start_task``: settings on the left; the mask editor (inpainting), input
    and output, zoomed crops and metrics on the right."""
    checkpoints = [str(path) for path in checkpoints]
    first = start_task
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                sample = gr.Dropdown(list(SAMPLES), value=SAMPLES[0], label="Sample image")
                upload = gr.File(label="... or upload an image", file_types=list(IMAGE_SUFFIXES),
                                 height=110)  # fmt: skip
                task = gr.Dropdown([(spec.label, key) for key, spec in TASKS.items()],
                                   value=first, label="Task")  # fmt: skip
                note = gr.Markdown(task_note(first))
                choice = gr.Dropdown(model_choices(first, checkpoints), value=DEFAULT,
                                     label="Model")  # fmt: skip
                degrade_first = gr.Checkbox(True, label="Degrade it first (the image is clean)")
                ensemble = gr.Checkbox(False, label="Self-ensemble: average the model over the "
                                       "8 flips and rotations (8x slower)")  # fmt: skip
                seed = gr.Number(0, precision=0, label="Seed (noise, mask, scan)")
                mask_mode = gr.Radio([RANDOM_MASK, DRAWN_MASK], value=RANDOM_MASK,
                                     label="Inpainting mask", visible=first == "inpaint")  # fmt: skip
                with gr.Accordion("Already damaged image? Its clean original", open=False):
                    reference = gr.File(label="Clean original (for the metrics only)",
                                        file_types=list(IMAGE_SUFFIXES), height=110)  # fmt: skip
                run = gr.Button("Restore", variant="primary")
                status = gr.Markdown("Ready.")
            with gr.Column(scale=2):
                editor = gr.ImageEditor(_editor_value(SAMPLES[0], None), type="numpy",
                                        label="Draw the holes here (inpainting, drawn mask)",
                                        sources=(), height=380, visible=first == "inpaint")  # fmt: skip
                with gr.Row():
                    degraded = gr.Image(
                        label="Input (degraded)", height=340, interactive=False, format="png"
                    )
                    output = gr.Image(label="Output", height=340, interactive=False, format="png")
                with gr.Row():
                    zoom_x = gr.Slider(0, 1, 0.5, step=0.01, label="Zoom centre x")
                    zoom_y = gr.Slider(0, 1, 0.5, step=0.01, label="Zoom centre y")
                    window = gr.Slider(0.05, 1, 0.25, step=0.05, label="Zoom window (of the side)")
                with gr.Row():
                    crops = [gr.Image(label=f"Zoom: {name}", height=220, interactive=False, format="png")
                             for name in ("input", "output", "clean original")]  # fmt: skip
                table = gr.Markdown("Metrics appear here when the clean image is known.")
        shown = gr.State([])

        def on_task(key: str):
            models = gr.update(choices=model_choices(key, checkpoints), value=DEFAULT)
            inpainting = gr.update(visible=key == "inpaint")
            return task_note(key), models, inpainting, inpainting

        def on_image(name: str | None, path: str | None):
            return _editor_value(name, path)

        def on_zoom(images: list, x: float, y: float, fraction: float):
            zoomed = zoom(images, (x, y), fraction) if images else []
            return [*zoomed, *[None] * (3 - len(zoomed))]

        def on_run(name, path, key, model, clean, averaged, number, mode, drawn, original, x, y,
                   fraction, progress=gr.Progress()):  # noqa: B008 (Gradio reads the default)  # fmt: skip
            request = Request(key, model, name, path, bool(clean), _layers(drawn, mode),
                              int(number or 0), original, bool(averaged))  # fmt: skip

            def passes(done: int, total: int) -> None:
                if total > 1:  # tiles or the self-ensemble: worth a bar
                    progress(done / total, desc=f"model pass {done} of {total}")

            message, result = handle(request, checkpoints, device, passes)
            if result is None:
                return message, None, None, None, None, None, "", []
            images = [result.degraded, result.output]
            if result.reference is not None:
                images.append(result.reference)
            zoomed = on_zoom(images, x, y, fraction)
            return (message, to_uint8(result.degraded), to_uint8(result.output), *zoomed,
                    metrics_markdown(result), images)  # fmt: skip

        task.change(on_task, task, [note, choice, mask_mode, editor])
        sample.change(on_image, [sample, upload], editor)
        upload.change(on_image, [sample, upload], editor)
        for slider in (zoom_x, zoom_y, window):
            slider.release(on_zoom, [shown, zoom_x, zoom_y, window], crops)
        inputs = [sample, upload, task, choice, degrade_first, ensemble, seed, mask_mode, editor,
                  reference, zoom_x, zoom_y, window]  # fmt: skip
        outputs = [status, degraded, output, *crops, table, shown]
        run.click(on_run, inputs, outputs, api_name="restore")
        app.load(on_run, inputs, outputs, api_name=False)  # the page opens with an example
    return app


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    checkpoints: Sequence[str] = (),
    device: str = "cpu",
    share: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Serve the demo on ``host``:``port`` (loopback by default; ``share=True`` for a public
    gradio.live link, e.g. from Colab). ``block=False`` returns at once (tests)."""
    app = build_app(checkpoints, device)
    app.queue(max_size=8).launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=False, quiet=not block,
    )  # fmt: skip
    return app
