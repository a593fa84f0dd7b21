"""Classical denoisers as tensor functions: the baselines DnCNN is compared with.

Taught in chapter 3. Both take a noisy image ``(C, H, W)`` (C = 1 or 3, float, roughly in
[0, 1], not clipped) and the noise level ``sigma`` on the 0-255 scale, and return the denoised
image with the same shape, clamped to [0, 1]. They run on the CPU (NumPy), whatever the
device of the input; the output goes back to the input's device.
"""

from __future__ import annotations

import numpy as np
import torch


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    return image.detach().float().cpu().permute(1, 2, 0).numpy().astype(np.float64)


def _to_tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    array = np.asarray(array, dtype=np.float32).reshape(like.shape[1], like.shape[2], -1)
    out = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return out.clamp(0, 1).to(like.device)


def bm3d_denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (Dabov et al., 2007) for grey images, CBM3D (in a luma-chroma space) for RGB.

    Uses the ``bm3d`` package (the authors' reference implementation). ``sigma``: the noise's
    standard deviation on the 0-255 scale (BM3D is told the true level, it does not estimate it).
    """
    try:
        import bm3d
    except ImportError as error:
        raise ImportError("bm3d_denoise needs the bm3d package: pip install bm3d") from error
    z = _to_numpy(noisy)
    if z.shape[2] == 3:
        out = bm3d.bm3d_rgb(z, sigma_psd=sigma / 255)
    else:
        out = bm3d.bm3d(z[:, :, 0], sigma_psd=sigma / 255)
    return _to_tensor(out, noisy)


def nl_means_denoise(noisy: torch.Tensor, sigma: float, h_factor: float = 0.8) -> torch.Tensor:
    """Non-local means (Buades et al., 2005) from scikit-image, with the known noise level.

    Each pixel becomes a weighted mean of pixels whose 5x5 neighbourhoods look alike (searched
    within 13x13). ``h = h_factor * sigma`` sets how alike they must be; ``fast_mode=True``.
    """
    from skimage.restoration import denoise_nl_means

    z = _to_numpy(noisy)
    s = sigma / 255
    out = denoise_nl_means(
        z, h=h_factor * s, sigma=s, patch_size=5, patch_distance=6,
        fast_mode=True, channel_axis=-1,
    )  # fmt: skip
    return _to_tensor(out, noisy)
