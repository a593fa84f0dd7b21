"""Degradations: the D and n of y = D(x) + n, batched on (N, C, H, W) float tensors, any device.

Taught across the course: bicubic resize (chapter 1), JPEG (chapter 2), noise and blur
(chapter 3), the Real-ESRGAN second-order pipeline (chapter 7), inpainting masks (chapter 8),
halftone and scanned-page damage (chapter 9). Random parameters are drawn per sample from a
``torch.Generator`` the caller passes, so every batch is reproducible.
"""

from restorelab.degrade.blur import (
    anisotropic_blur,
    filter2d,
    gaussian_kernels,
    isotropic_blur,
    sinc_kernels,
)
from restorelab.degrade.halftone import cmyk_to_rgb, dot_screen, halftone, rgb_to_cmyk
from restorelab.degrade.jpeg import jpeg, jpeg_qualities, luma_quantisation_table
from restorelab.degrade.masks import (
    MaskConfig,
    box_masks,
    hole_masks,
    inpainting_damage,
    random_masks,
    stroke_masks,
)
from restorelab.degrade.noise import add_gaussian_noise, gaussian_noise, poisson_noise
from restorelab.degrade.params import make_generator
from restorelab.degrade.resize import bicubic_resize, output_size
from restorelab.degrade.scan import (
    ScanConfig,
    bleed_through,
    color_transition,
    external_noise,
    internal_noise,
    scan_damage,
    texture_distortion,
)
from restorelab.degrade.second_order import SecondOrderConfig, StageConfig, second_order

__all__ = [
    "MaskConfig",
    "ScanConfig",
    "SecondOrderConfig",
    "StageConfig",
    "add_gaussian_noise",
    "anisotropic_blur",
    "bicubic_resize",
    "bleed_through",
    "box_masks",
    "cmyk_to_rgb",
    "color_transition",
    "dot_screen",
    "external_noise",
    "filter2d",
    "gaussian_kernels",
    "gaussian_noise",
    "halftone",
    "hole_masks",
    "inpainting_damage",
    "internal_noise",
    "isotropic_blur",
    "jpeg",
    "jpeg_qualities",
    "luma_quantisation_table",
    "make_generator",
    "output_size",
    "poisson_noise",
    "random_masks",
    "rgb_to_cmyk",
    "scan_damage",
    "second_order",
    "sinc_kernels",
    "stroke_masks",
    "texture_distortion",
]
