"""Which device to train on, and a friendly report of it for notebooks.

Taught in chapter 0: the first cell of every notebook calls :func:`describe_device`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then Apple MPS, else CPU; otherwise ``torch.device(name)``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device() -> torch.device:
    """Print the device the course will use (with a hint to enable a GPU) and return it."""
    device = pick_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
    else:
        print(
            f"Device: {device.type}, torch {torch.__version__}. No GPU found: QUICK settings run "
            "fine on CPU; for the full runs in Colab choose Runtime > Change runtime type > "
            "T4 GPU, then run the notebook again."
        )
    return device


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` CPU threads for torch, then restore the previous number.

    Chapter 7 trains its 2-D toy GANs with one thread: for networks this small, threads cost
    more in synchronisation than they save (many times more on a busy machine).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
