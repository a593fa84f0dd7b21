"""SSIM speed and memory: the 2-D 11x11 window against restorelab's separable, strip-wise SSIM.

Run: ``python benchmarks/ssim.py [--repeats 3] [--large 6000]``. Writes
``benchmarks/results/ssim.{json,md}``.

(a) the form ``restorelab.metrics.ssim`` had before issue 13: one ``F.conv2d`` with the full
    11x11 Gaussian window in float64 on the whole image (121 multiply-adds per pixel, and an
    im2col buffer 121 times the image: 34.7 GB for a 6000x6000 image);
(b) ``restorelab.metrics.ssim``: the same window as two 1-D passes, on strips of rows.

Both score the Y channel of the embedded validation photos (and the first one resized to 768x512) against
a noisy copy, on one torch thread by default (a shared 2-core machine). Reported: the seconds
per image (best of ``--repeats``), the speed-up, the largest difference between the two values
(must be below 1e-6), and the peak resident memory of (b) on a ``--large`` x ``--large`` RGB
image, measured in a fresh subprocess (the image itself included).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from report import save

from restorelab import metrics
from restorelab.color import rgb_to_y
from restorelab.data import embedded_photos
from restorelab.degrade import bicubic_resize

_PEAK = """
import resource, sys, torch
from restorelab import metrics
size = int(sys.argv[1])
a = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
b = a.clone()
b[:, ::7] = 255 - b[:, ::7]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
value = metrics.ssim(a, b)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(value, base / 2**20, peak / 2**20)
"""


def ssim_2d_window(pred: torch.Tensor, target: torch.Tensor) -> float:
    """(a): SSIM of two (C, H, W) images in [0, 1] with one 2-D convolution, as before issue 13."""
    a, b = (x[None].double().clamp(0, 1).mul(255).round() for x in (pred, target))
    c = a.shape[1]
    g = metrics._gaussian_window()
    window = (g[:, None] * g[None, :]).expand(c, 1, metrics.WINDOW, metrics.WINDOW)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + metrics.C1) * (2 * cov + metrics.C2)) / (
        (mu_a**2 + mu_b**2 + metrics.C1) * (var_a + var_b + metrics.C2)
    )
    return float(ssim_map.mean())


def best_time(fn, args: tuple, repeats: int) -> tuple[float, float]:
    """(``fn(*args)``, best seconds over ``repeats`` calls)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(*args)
        times.append(time.perf_counter() - start)
    return value, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=3, help="validation photos to score")
    parser.add_argument("--large", type=int, default=6000, help="side of the memory test image")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, worst = [], 0.0
    gen = torch.Generator().manual_seed(0)
    photos = embedded_photos("val")[: args.images]
    # the measurement was on a 768x512 photo: the first one, resized to that size
    photos.insert(0, bicubic_resize(photos[0], size=(512, 768)).clamp(0, 1))
    for image in photos:
        clean = rgb_to_y(image)
        noisy = (clean + 0.05 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
        old, old_s = best_time(ssim_2d_window, (noisy, clean), args.repeats)
        new, new_s = best_time(metrics.ssim, (noisy, clean), args.repeats)
        worst = max(worst, abs(old - new))
        rows.append(
            {"size": list(clean.shape[-2:]), "ssim": new, "2d_s": old_s, "separable_s": new_s}
        )
    old_total = sum(r["2d_s"] for r in rows)
    new_total = sum(r["separable_s"] for r in rows)

    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(args.large)], capture_output=True, text=True, check=True
    ).stdout.split()
    large = {"side": args.large, "ssim": float(out[0]), "rss_before_gib": float(out[1]),
             "peak_rss_gib": float(out[2])}  # fmt: skip

    result = {
        "device": f"cpu ({platform.machine()}), {args.threads} torch thread(s)",
        "torch": torch.__version__,
        "images": rows,
        "speedup": old_total / new_total,
        "max_abs_difference": worst,
        "large_image": large,
    }
    lines = [
        f"SSIM of the Y channel (11x11 Gaussian window, sigma 1.5, float64) on {result['device']}, "
        f"torch {torch.__version__}; best of {args.repeats}",
        "",
        "| image (H x W) | (a) 2-D window, s | (b) separable, strips, s | speed-up | SSIM |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size'][0]} x {r['size'][1]} | {r['2d_s']:.3f} | {r['separable_s']:.3f} | "
            f"{r['2d_s'] / r['separable_s']:.1f}x | {r['ssim']:.6f} |"
        )
    lines += [
        "",
        f"Speed-up over all images: {result['speedup']:.1f}x; largest difference between (a) and "
        f"(b): {worst:.1e} (required: below 1e-6).",
        "",
        f"(b) on a {args.large}x{args.large} RGB image: peak resident memory "
        f"{large['peak_rss_gib']:.2f} GiB (of which the process and the two uint8 images: "
        f"{large['rss_before_gib']:.2f} GiB); (a) would need an im2col buffer of "
        f"{3 * args.large**2 * 121 * 8 / 2**30:.1f} GiB per blur.",
    ]
    save("ssim", result, lines)


if __name__ == "__main__":
    main()
