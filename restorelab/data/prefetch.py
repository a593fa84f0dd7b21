"""Prefetching: load and copy the next batches while the model trains on this one.

Taught in chapter 2 (why the GPU waits for data, and how to stop it). A background thread pulls
batches from any iterable (a DataLoader, a generator ...), pins them in page-locked memory and,
on CUDA, copies them to the device with ``non_blocking=True`` on a side stream; the training loop
waits only on that copy's event, never on the loading. On CPU the thread still overlaps the
loading (decoding, degrading: torch releases the GIL) with the training step. Batches are
tensors or (nested) tuples / lists / dicts of tensors; anything else passes through unchanged.
The order and content of the batches are exactly those of the iterable.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

_DONE = object()


def map_tensors(batch: Any, fn) -> Any:
    """Apply ``fn`` to every tensor inside ``batch`` (tensors, tuples, lists, dicts)."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {key: map_tensors(value, fn) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(map_tensors(value, fn) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(map_tensors(value, fn) for value in batch)
    return batch


def _tensors(batch: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside ``batch``."""
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, dict):
        for value in batch.values():
            yield from _tensors(value)
    elif isinstance(batch, (tuple, list)):
        for value in batch:
            yield from _tensors(value)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher:
    """Iterate over ``iterable`` with up to ``depth`` batches loaded ahead on ``device``.

    ``for batch in Prefetcher(loader, "cuda"):`` gives the loader's batches, on the device.
    Errors raised while loading are raised in the loop. Each ``iter()`` starts a new pass.
    """

    def __init__(self, iterable: Iterable, device: str | torch.device, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.iterable, self.device, self.depth = iterable, torch.device(device), depth
        self.cuda = self.device.type == "cuda"

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def _move(self, batch: Any) -> Any:
        if self.cuda:
            batch = map_tensors(
                batch, lambda t: t if t.is_cuda or t.is_pinned() else t.pin_memory()
            )
        return map_tensors(batch, lambda t: t.to(self.device, non_blocking=self.cuda))

    def _work(self, out: queue.Queue, stop: threading.Event) -> None:
        stream = torch.cuda.Stream(self.device) if self.cuda else None

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for batch in self.iterable:
                if stream is not None:
                    with torch.cuda.stream(stream):
                        moved = self._move(batch)
                        event = torch.cuda.Event()
                        event.record(stream)
                else:
                    moved, event = self._move(batch), None
                if not put((moved, event)):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))

    def __iter__(self) -> Iterator[Any]:
        out: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        worker = threading.Thread(target=self._work, args=(out, stop), daemon=True)
        worker.start()
        try:
            while True:
                item = out.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                batch, event = item
                if event is not None:
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(event)
                    # the tensors were allocated on the side stream: tell the caching allocator
                    # they are used on this one, so their memory is not reused too early
                    for tensor in _tensors(batch):
                        if tensor.is_cuda:
                            tensor.record_stream(current)
                yield batch
        finally:
            stop.set()
            worker.join(timeout=5)
