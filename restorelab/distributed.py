"""Several processes, one training run: the set-up the Trainer needs under ``torchrun``.

Taught in the appendix (training on several GPUs). ``torchrun --nproc_per_node=N`` starts N
copies of a program and gives each the environment variables ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` (plus ``MASTER_ADDR``/``MASTER_PORT``). :func:`init` reads them and joins the
process group: NCCL when the processes train on CUDA, gloo on CPU. Without those variables
everything here answers as a single process (rank 0 of 1), so the same code runs in a notebook.

Every collective below must be called by all ranks in the same order; :func:`agree` is the one
place where rank 0 alone decides something (reads a folder, raises an error) and all ranks
follow, so an error stops every rank with the same message instead of leaving the others
waiting forever.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """True when this process was started by torchrun (even with one process)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """True when a process group is initialised (under torchrun, also with one rank)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """How many processes train together (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """This process's index on its machine (picks its GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the rank that writes checkpoints, logs and TensorBoard."""
    return rank() == 0


def init(device: torch.device, timeout_minutes: float = 60) -> torch.device:
    """Join the process group torchrun describes; returns the device this rank trains on.

    ``device``: the device picked for a single process. Under torchrun on CUDA each rank takes
    ``cuda:LOCAL_RANK`` and NCCL; on CPU, gloo. Outside torchrun (or already initialised) it
    only returns the device. ``timeout_minutes`` bounds how long ranks wait for each other (the
    others wait while rank 0 validates, so make it longer than one validation).
    """
    if device.type == "cuda" and launched():
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if launched() and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
    return device


def backend() -> str | None:
    """The process group's backend (``"nccl"``, ``"gloo"``), None without one."""
    return dist.get_backend() if active() else None


def shutdown() -> None:
    """Leave the process group (at the end of a command-line run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (nothing to do for one process)."""
    if active():
        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def agree(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only; every rank returns its result or raises its error.

    Rank 0 raises the error itself; the others raise one of the same built-in type (OSError,
    ValueError ...; RuntimeError for other types) with the same message.
    """
    outcome: tuple[Any, tuple[type, str] | None] = (None, None)
    error: Exception | None = None
    if is_main():
        try:
            outcome = (fn(), None)
        except Exception as raised:  # told to every rank, raised there
            error = raised
            kind = type(raised) if type(raised).__module__ == "builtins" else RuntimeError
            outcome = (None, (kind, str(raised)))
    result, failure = broadcast(outcome)
    if error is not None:
        raise error
    if failure is not None:
        raise failure[0](failure[1])
    return result


def mean(values: Sequence[float]) -> list[float]:
    """Each of ``values`` averaged over all ranks, in one all-reduce (for logging: the losses
    of the whole global batch). Every rank passes the same number of values."""
    values = [float(v) for v in values]
    if not active() or not values:
        return values
    # float64 on the CPU would need gloo under NCCL; a device tensor works for both backends
    device = torch.device("cuda", local_rank()) if backend() == "nccl" else "cpu"
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return (total / world_size()).tolist()


def gather_batch(shard: torch.Tensor) -> torch.Tensor:
    """Every rank's ``shard`` (same shape on all ranks) concatenated in rank order along dim 0."""
    if not active():
        return shard
    parts = [torch.empty_like(shard) for _ in range(world_size())]
    dist.all_gather(parts, shard.contiguous())
    return torch.cat(parts)
