"""Model registry: every architecture of the course, built by name.

``build(name, preset="paper", **overrides)`` returns the paper's configuration (or another preset
a model file defines, e.g. ``"competition"`` for the under-10M descanning variants), with keyword
overrides on top. Each model lives in its own file of this package as a pure ``nn.Module``; the
file's ``PRESETS`` dict maps preset names to constructor keyword arguments.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from restorelab.models.official import load_official

__all__ = ["available", "build", "count_flops", "count_params", "load_official", "presets"]

# name -> (module inside restorelab.models, class name)
_REGISTRY: dict[str, tuple[str, str]] = {
    "srcnn": ("srcnn", "SRCNN"),
    "arcnn": ("arcnn", "ARCNN"),
    "dncnn": ("dncnn", "DnCNN"),
    "srresnet": ("srresnet", "SRResNet"),
    "msrresnet": ("msrresnet", "MSRResNet"),
    "kbnet": ("kbnet", "KBNet"),
    "restormer": ("restormer", "Restormer"),
    "rrdbnet": ("rrdbnet", "RRDBNet"),
    "vgg_discriminator": ("vgg_discriminator", "VGGStyleDiscriminator"),
    "mlp": ("mlp", "MLP"),
    "unet_inpainter": ("unet_inpainter", "UNetInpainter"),
}


def available() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    return sorted(_REGISTRY)


def _module(name: str):
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}")
    module_name, _ = _REGISTRY[name]
    return importlib.import_module(f"{__name__}.{module_name}")


def presets(name: str) -> dict[str, dict]:
    """The named configurations of model ``name`` (at least ``"paper"``)."""
    return dict(_module(name).PRESETS)


def build(name: str, preset: str = "paper", **overrides) -> nn.Module:
    """Build model ``name`` in configuration ``preset``, with ``overrides`` applied on top."""
    module = _module(name)
    if preset not in module.PRESETS:
        raise KeyError(
            f"model {name!r} has no preset {preset!r}; presets: {sorted(module.PRESETS)}"
        )
    kwargs = {**module.PRESETS[preset], **overrides}
    return getattr(module, _REGISTRY[name][1])(**kwargs)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Floating-point operations of one forward pass of ``model`` on ``inputs`` (no gradients).

    Counted by ``torch.utils.flop_counter``: matrix products and convolutions, 2 per
    multiply-add; element-wise operations are not counted. Chapter 5 compares layers with it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return int(counter.get_total_flops())
