"""Pretrained ImageNet backbones (VGG19, AlexNet) through torchvision's weights API.

Taught in chapter 7: the perceptual loss (:class:`restorelab.losses.PerceptualLoss`) compares
VGG19 features, LPIPS (:class:`restorelab.metrics.LPIPS`) AlexNet features. The weights download
once from download.pytorch.org into torch hub's cache (``torch.hub.get_dir()/checkpoints``, by
default ``~/.cache/torch/hub/checkpoints``), as on Colab. Offline, :func:`load_weights` raises a
:class:`MissingWeightsError` that names the missing file, where to put it and where to get it.

``pretrained=False`` gives the same architecture with random weights: for tests only. A loss or
distance computed with it is *not* a VGG loss or LPIPS, and the course labels it so.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

# torchvision's layer list of VGG19 ``features``, named as the papers name the layers
VGG19_LAYERS = [
    name
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1)
    for name in (
        *(f"{kind}{block}_{i}" for i in range(1, convs + 1) for kind in ("conv", "relu")),
        f"pool{block}",
    )
]
# torchvision's input normalisation for its ImageNet backbones (inputs in [0, 1])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the torchvision weights behind each backbone of the lpips package (its ``net=`` names)
LPIPS_BACKBONES = {
    "alex": "AlexNet_Weights",
    "vgg": "VGG16_Weights",
    "squeeze": "SqueezeNet1_1_Weights",
}


def imagenet_weights(name: str) -> WeightsEnum:
    """torchvision's ImageNet weights ``name`` (e.g. ``"VGG19_Weights"``), version 1.

    torchvision.models is imported here, not with this module: it takes seconds to import.
    """
    from torchvision import models

    return getattr(models, name).IMAGENET1K_V1


def weights_file(weights: WeightsEnum) -> Path:
    """Where torch hub keeps the file of ``weights`` once downloaded."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


class MissingWeightsError(RuntimeError):
    """ImageNet weights that are neither in torch hub's cache nor downloadable (offline).

    ``str(error)`` says the file, where it goes and where to get it; ``error.summary`` says it in
    one line (what a chapter prints where it goes on without them).
    """

    def __init__(self, weights: WeightsEnum, error: BaseException, prefix: str = "") -> None:
        path = weights_file(weights)
        self.summary = (f"{prefix}the ImageNet weights {path.name} are not in torch hub's cache "
                        f"and could not be downloaded ({type(error).__name__})")  # fmt: skip
        super().__init__(
            f"{prefix}could not load the ImageNet weights {weights} ({type(error).__name__}: "
            f"{error}). The file {path.name} is missing from {path.parent}: restorelab downloads "
            f"it from {weights.url} on first use (Colab does this by itself). Offline, download "
            f"it on another machine (e.g. `wget {weights.url}`) and copy it to {path}, or set "
            "TORCH_HOME to a folder whose hub/checkpoints/ holds it. Tests use pretrained=False "
            "(random weights, whose numbers mean nothing)."
        )


@contextlib.contextmanager
def quiet_download() -> Iterator[None]:
    """No "Downloading: ..." line from torch hub and no torchvision deprecation warning (the
    lpips package still passes ``pretrained=``): a page shows one line when weights are missing."""
    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore", UserWarning)
        yield


def load_weights(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict of ``weights`` (downloaded once into torch hub's cache), or a
    :class:`MissingWeightsError`."""
    try:
        with quiet_download():
            return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a torn file a RuntimeError
        raise MissingWeightsError(weights, error) from error


def vgg19_features(pretrained: bool = True, until: str = "pool5") -> nn.Sequential:
    """VGG19's convolutional part up to layer ``until`` (a name of :data:`VGG19_LAYERS`).

    Frozen (``requires_grad=False``, eval mode). Input: (N, 3, H, W) normalised with
    :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`. ``pretrained=False``: random weights (tests).
    """
    if until not in VGG19_LAYERS:
        raise ValueError(f"unknown VGG19 layer {until!r}; layers: {', '.join(VGG19_LAYERS)}")
    from torchvision.models import vgg19

    with torch.device("meta"):  # no memory for the classifier (102M weights) we drop
        features = vgg19(weights=None).features[: VGG19_LAYERS.index(until) + 1]
    features = features.to_empty(device="cpu")
    if pretrained:
        state = load_weights(imagenet_weights("VGG19_Weights"))
        features.load_state_dict({k: state[f"features.{k}"] for k in features.state_dict()})
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            if not pretrained:  # torchvision's initialisation of VGG
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        if isinstance(layer, nn.ReLU):
            layer.inplace = False  # a feature taken before a ReLU must not be overwritten by it
    return features.eval().requires_grad_(False)
