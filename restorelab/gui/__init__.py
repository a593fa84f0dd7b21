"""``restorelab gui``: an interactive restoration demo in the browser (Gradio, an optional extra).

Taught at the end of chapter 8. Pick or upload an image, pick a task (x2 super-resolution,
denoising, JPEG, inpainting with a drawn or random mask, descanning) and a model, and compare
input and output side by side, zoomed, with the metrics when the clean image is known. The logic
lives in :mod:`restorelab.gui.inputs` and :mod:`restorelab.gui.pipeline` (plain functions,
tested without Gradio); the page in :mod:`restorelab.gui.app`, imported only when Gradio is
installed (``pip install "restorelab[gui]"``).
"""

from restorelab.gui.inputs import SAMPLES, DemoError, read_upload, sample_image
from restorelab.gui.pipeline import TASKS, load_restorer, model_choices, restore

__all__ = [
    "SAMPLES",
    "TASKS",
    "DemoError",
    "launch",
    "load_restorer",
    "model_choices",
    "read_upload",
    "restore",
    "sample_image",
]


def launch(**kwargs):
    """Start the demo (see :func:`restorelab.gui.app.launch`); a clear error without Gradio."""
    from restorelab.gui.app import launch as launch_app

    return launch_app(**kwargs)
