"""What the benchmarks share: the results folder, the machine's name, and writing a result.

Each benchmark is run as ``python benchmarks/NAME.py`` (so this folder is on ``sys.path``) and
ends with :func:`save`: ``results/NAME.json`` (every number) and ``results/NAME.md`` (the table
the README and the closing notes quote), the table also printed.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """The CPU and its torch threads, and the GPU when there is one."""
    cpu = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return f"{cpu} + {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else cpu


def save(name: str, result: dict, lines: list[str], folder: Path = RESULTS) -> None:
    """Write ``folder/name.json`` from ``result`` and ``folder/name.md`` from ``lines``; print
    the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = "\n".join(lines) + "\n"
    (folder / f"{name}.md").write_text(text)
    print(text, end="")
