"""Chapter 7's interpolation sweep: its ends are the two networks, scored on both axes."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from restorelab import models
from restorelab.data import embedded_photos
from restorelab.interpolation import interpolation_sweep, perception_scores
from restorelab.io import centre_crop
from restorelab.tasks import SuperResolution
from restorelab.viz import perception_distortion_figure

TASK = SuperResolution(scale=4, channels="rgb", pre_upsample=False)


def _network(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build("rrdbnet", features=8, num_blocks=1, growth=4).eval()


def test_the_sweep_runs_from_the_psnr_model_to_the_gan_model():
    images = [centre_crop(image, 192) for image in embedded_photos("val")[:2]]
    psnr_model, gan_model = _network(0), _network(1)
    sweep = interpolation_sweep(psnr_model, gan_model, TASK, images, alphas=(0.0, 0.5, 1.0))
    assert [row["alpha"] for row in sweep] == [0.0, 0.5, 1.0]
    for model, row in ((psnr_model, sweep[0]), (gan_model, sweep[-1])):
        with torch.no_grad():
            outputs = [TASK.restore(model, TASK.degrade(image)).clamp(0, 1) for image in images]
        assert row == pytest.approx({"alpha": row["alpha"], **perception_scores(outputs, images, TASK)})
    assert sweep[0]["psnr_y"] != sweep[-1]["psnr_y"]  # two different networks, two ends
    figure = perception_distortion_figure(sweep, bicubic={"psnr_y": 20.0, "niqe": 30.0},
                                          truth_niqe=8.0)  # fmt: skip
    assert len(figure.axes) == 1  # NIQE only: no LPIPS in the rows
    matplotlib.pyplot.close(figure)


def test_a_flat_output_has_no_niqe_and_the_figure_falls_back_to_psnr():
    flat = [torch.full((3, 192, 192), 0.5)]
    assert perception_scores(flat, flat, TASK)["niqe"] is None
    sweep = [{"alpha": a, "psnr_y": 20.0 - a, "niqe": None} for a in (0.0, 1.0)]
    figure = perception_distortion_figure(sweep)
    assert figure.axes[0].get_xlabel() == "α"
    matplotlib.pyplot.close(figure)
