"""Inpainting with a class input: damage made per batch, augmentation on the device.

Taught in chapter 8 (the clustered inpainter). The dataset yields clean images and a class per
image (the cluster, the true class, or 0); every step, on the device:

1. augmentation of the clean batch: a random crop, brightness / contrast / saturation jitter
   and one of the 8 flips and 90-degree turns, each drawn per image;
2. damage: a fresh mask (strokes, boxes, holes: :mod:`restorelab.degrade.masks`) and Gaussian
   noise on the known pixels, drawn from the step's generator: never stored, different at
   every step, so the network never sees the same damage twice (a regulariser);
3. model input: the damaged image and its mask, concatenated (N, C + 1, H, W), with the class.

The augmentation is applied to the clean image *before* it is damaged, so the damaged input
and the target share it exactly. Scores: RGB PSNR (no border shaved) of the composite
``damaged * (1 - mask) + output * mask`` against the original, and LPIPS when given one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from restorelab import metrics
from restorelab.augment import color_jitter, crop_at, crop_positions, paired_flip_rotate
from restorelab.degrade.masks import MaskConfig, inpainting_damage

Batch = torch.Tensor | Sequence[torch.Tensor]


@dataclass
class Inpainting:
    """Inpainting of ``mask``-made damage on ``crop`` x ``crop`` crops of the stored images.

    ``jitter``: the brightness, contrast and saturation range (0 for none).
    """

    crop: int = 64
    mask: MaskConfig = field(default_factory=lambda: MaskConfig(noise_sigma=(0.0, 10.0)))
    jitter: float = 0.2
    monitor = "psnr"  # class attribute, not a field

    def augment(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Crop, colour jitter, flips and turns of a clean batch (N, C, H, W), per image."""
        top, left = crop_positions(clean.shape[0], clean.shape[-2:], self.crop, generator,
                                   clean.device)  # fmt: skip
        out = crop_at(clean, top, left, self.crop)
        if self.jitter:
            out = color_jitter(out, generator, self.jitter, self.jitter, self.jitter, hue=0.0)
        return paired_flip_rotate([out], generator)[0]

    def damage(
        self, clean: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(model input (N, C + 1, H, W): damaged image and mask, mask (N, 1, H, W))."""
        damaged, mask = inpainting_damage(clean, generator, self.mask)
        return torch.cat([damaged, mask], 1), mask

    def make_pair(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A device batch ``(images (N, C, H, W), classes (N,))`` (or images alone: class 0) ->
        ``((model input, classes), target)``, augmented and damaged afresh."""
        images, classes = (batch, None) if isinstance(batch, torch.Tensor) else batch
        if classes is None:
            classes = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        clean = self.augment(images, generator)
        inputs, _ = self.damage(clean, generator)
        return (inputs, classes), clean

    def fixed_damage(
        self, images: Sequence[torch.Tensor] | torch.Tensor, seed: int = 12345
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The validation damage of each image (C, H, W): ``(model input, mask)``, the same for
        the same ``seed`` and image index, whatever model is scored."""
        out = []
        for i, image in enumerate(images):
            generator = torch.Generator(image.device).manual_seed(seed + i)
            inputs, mask = self.damage(image[None], generator)
            out.append((inputs[0], mask[0]))
        return out

    def restore(
        self, model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor | int
    ) -> torch.Tensor:
        """The composite (N, C, H, W) in [0, 1]: known pixels kept, the holes from ``model``."""
        inputs = inputs if inputs.ndim == 4 else inputs[None]
        damaged, mask = inputs[:, :-1], inputs[:, -1:]
        with torch.no_grad():
            output = model(inputs, classes).float().clamp(0, 1)
        return damaged * (1 - mask) + output * mask

    def evaluate(
        self,
        model: nn.Module | None,
        images: Sequence[torch.Tensor],
        classes: Sequence[int] | torch.Tensor | None = None,
        lpips: nn.Module | None = None,
        seed: int = 12345,
        damage: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> dict[str, list[float]]:
        """Per-image ``psnr`` (RGB, 8-bit rounded, nothing shaved) and, with an
        :class:`restorelab.metrics.LPIPS`, ``lpips``, of ``model``'s composites (of the damaged
        images themselves when ``model`` is None) on the fixed damage of ``images``
        (``damage``: what :meth:`fixed_damage` returned for them, to skip drawing it again)."""
        damage = self.fixed_damage(images, seed) if damage is None else damage
        scores: dict[str, list[float]] = {"psnr": []}
        if lpips is not None:
            scores["lpips"] = []
        for i, (image, (inputs, _)) in enumerate(zip(images, damage, strict=True)):
            if model is None:
                restored = inputs[None, :-1]
            else:
                device = next(model.parameters()).device
                label = 0 if classes is None else int(classes[i])
                restored = self.restore(model, inputs[None].to(device), label).cpu()
            scores["psnr"].append(metrics.psnr(restored[0], image))
            if lpips is not None:
                device = next(lpips.parameters()).device
                with torch.no_grad():
                    value = lpips(restored.to(device), image[None].to(device))
                scores["lpips"].append(float(value))
        return scores


def mean_colour_fill(inputs: torch.Tensor) -> torch.Tensor:
    """The simplest fill a network must beat (chapter 8): every hole of a model input
    (C + 1, H, W) (the damaged image and its mask, as :meth:`Inpainting.damage` makes it)
    filled with the mean colour of the image's known pixels -> (C, H, W) in [0, 1]."""
    damaged, mask = inputs[:-1], inputs[-1:]
    known = 1 - mask
    colour = (damaged * known).sum((1, 2), keepdim=True) / known.sum().clamp(min=1)
    return damaged * known + colour * mask
