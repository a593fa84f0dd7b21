"""Degradations: the D and n of y = D(x) + n, batched on (N, C, H, W) float tensors, any device.

Taught across the course: bicubic resize (chapter 1), JPEG (chapter 2), noise (chapter 3).
"""

from restorelab.degrade.resize import bicubic_resize, output_size

__all__ = ["bicubic_resize", "output_size"]
