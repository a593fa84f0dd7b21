"""What ``torch.compile`` built for a run, kept in its folder beside ``last.pt``.

Taught in chapter 5. Compiling a network (``TrainConfig(compile=True)``, the ``--fast``
preset on a GPU) costs CPU time before the first step, more the more layers the network has
(numbers below). A Colab runtime starts empty, so every session that continues a run would pay it
again. The Trainer therefore writes the compiled artifacts (Inductor's kernels and
AOTAutograd's graphs, ``torch.compiler.save_cache_artifacts``) to ``compile_cache.bin`` the
first time a ``fit`` saves ``last.pt`` and again when the ``fit`` ends (progressive learning
compiles once per patch size); ``fit(resume=True)`` loads the file before the first step, so
the compiler finds its work done. On a GPU the file also holds the compiled Triton kernels
(Inductor bundles them into its graph cache); on a CPU the C++ kernels are built again. For the
descanning table's QUICK Restormer on two CPU cores (``benchmarks/compile_cache.py``, torch
2.14), four steps took 97-105 s from a cold start, 64-70 s resumed in a new process with this
file alone, 3-4 s resumed with the machine's own Inductor cache, and 1 s uncompiled.
The file is keyed by torch itself: artifacts from another torch version or another GPU are
simply not used, and a file that does not load at all is named in a note and the run compiles
afresh.

The file holds compiled code, so it is as trusted as the run folder it sits in: resume only
your own runs (graders never resume a student's run; they load weights with
``weights_only=True``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from restorelab.train.checkpoint import note, write_atomic

CACHE_FILE = "compile_cache.bin"


def save_compiled(out_dir: Path) -> Path | None:
    """Write everything this process compiled so far to ``out_dir/compile_cache.bin``
    (atomically); None when nothing was compiled or it could not be written (a note says
    why: losing the cache only costs compiling again, never the run)."""
    path = out_dir / CACHE_FILE
    try:
        artifacts = torch.compiler.save_cache_artifacts()
        if artifacts is not None:
            write_atomic(path, lambda handle: handle.write(artifacts[0]))
            return path
    except Exception as error:
        note(f"{path}: not written ({type(error).__name__}: {error}); a resume compiles afresh")
    return None


def load_compiled(out_dir: Path) -> bool:
    """Hand ``out_dir/compile_cache.bin`` (if any) to the compiler's caches before compiling;
    True when it was loaded. A file that does not load is named in a one-line note (torch's own
    warning and traceback are held back), never an error: it only costs compiling again."""
    path = out_dir / CACHE_FILE
    if not path.is_file():
        return False
    torch_log = logging.getLogger("torch.compiler._cache")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        loaded = torch.compiler.load_cache_artifacts(path.read_bytes()) is not None
        reason = "torch could not read it: torn, or written by another torch"
    except Exception as error:
        loaded, reason = False, f"{type(error).__name__}: {error}"
    finally:
        torch_log.setLevel(level)
    if not loaded:
        note(f"{path}: not usable ({reason}); compiling afresh")
    return loaded
