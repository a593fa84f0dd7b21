"""Time and peak memory of a computation, on the CPU as on a GPU.

Taught in chapter 6 (attention that scales: spatial self-attention against MDTA, whole pages
with and without tiles). :class:`TensorMemory` counts the bytes of the tensors that operations
create while it is active (views of one storage counted once, a storage released when its last
tensor dies), so the peak is the same on any device and does not depend on the allocator's
caching. The input tensors that exist before are not counted.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class TensorMemory(TorchDispatchMode):
    """``with TensorMemory() as memory: ...`` then ``memory.peak``: the most bytes held at once
    by tensors created inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [tensors alive, bytes]

    def _release(self, pointer: int) -> None:
        entry = self._storages.get(pointer)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._storages[pointer]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            pointer, size = storage.data_ptr(), storage.nbytes()
            if pointer in self._storages:
                self._storages[pointer][0] += 1
            else:
                self._storages[pointer] = [1, size]
                self.live += size
                self.peak = max(self.peak, self.live)
            weakref.finalize(tensor, self._release, pointer)
        return out


def time_and_memory(fn: Callable[[], object], repeats: int = 1) -> tuple[float, int]:
    """(fastest seconds of ``fn()`` over ``repeats`` runs, peak bytes of one run), without
    gradients. The run that measures the memory comes first and warms up."""
    with torch.no_grad():
        with TensorMemory() as memory:
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return min(times), memory.peak


def training_step_memory(model: torch.nn.Module, batch: torch.Tensor) -> int:
    """Peak bytes of one training step (forward, L1 loss against ``batch``, backward) of
    ``model`` on ``batch`` (N, C, H, W), measured on a copy in train mode: the step leaves the
    model, its gradients and its batch-norm statistics as they were (labs 5 and 6)."""
    import copy

    import torch.nn.functional as F

    net = copy.deepcopy(model).train()
    with TensorMemory() as memory:
        F.l1_loss(net(batch), batch).backward()
    return memory.peak


def attention_scaling(
    sides: Sequence[int],
    channels: int = 48,
    heads: int = 1,
    limit_bytes: int = 2**29,
    repeats: int = 1,
    device: str | torch.device = "cpu",
) -> list[dict]:
    """Time and peak memory of one MDTA and one spatial attention layer on (1, channels, s, s).

    One row per layer and side: ``layer``, ``side``, ``seconds``, ``bytes``. Spatial attention
    stops (a row with ``seconds`` and ``bytes`` None) at the first side whose attention maps
    alone (``heads x (s*s)^2`` floats, twice: before and after the softmax) would pass
    ``limit_bytes``.
    """
    from restorelab.models.restormer import MDTA, SpatialAttention

    torch.manual_seed(0)
    layers = {
        "MDTA (channels)": MDTA(channels, heads),
        "spatial (pixels)": SpatialAttention(channels, heads),
    }
    rows, stopped = [], set()
    for side in sides:
        x = torch.rand(1, channels, side, side, device=device)
        for name, layer in layers.items():
            layer = layer.to(device).eval()
            quadratic = name.startswith("spatial")
            if name in stopped or (quadratic and 2 * heads * side**4 * 4 > limit_bytes):
                if name not in stopped:
                    rows.append({"layer": name, "side": side, "seconds": None, "bytes": None})
                stopped.add(name)
                continue
            seconds, peak = time_and_memory(lambda layer=layer, x=x: layer(x), repeats)
            rows.append({"layer": name, "side": side, "seconds": seconds, "bytes": peak})
    return rows
