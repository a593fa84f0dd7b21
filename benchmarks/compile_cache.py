"""What ``torch.compile`` costs before the first step, and what ``compile_cache.bin`` saves.

Run: ``python benchmarks/compile_cache.py [--repeats 2]``. Writes
``benchmarks/results/compile_cache.{json,md}``; chapter 5 and the docstring of
:mod:`restorelab.train.compile_cache` quote its table.

The network is the descanning table's QUICK Restormer (``restorelab.descanning``) on its QUICK
pages. Each fit runs in a new process (imports and page rendering are not timed: the clock
covers ``Trainer.fit`` only), and each of the four starts trains four more steps of one run:

* eager: the same run uncompiled (its own folder);
* cold: compiled, with an empty Inductor cache (a new machine, nothing saved);
* resume, run folder only: continues the cold run with another empty Inductor cache, so only
  the run folder's ``compile_cache.bin`` carries what was compiled (a new Colab runtime);
* resume, machine cache: continues it with the cold start's own Inductor cache (the same
  machine, as when a run is resumed where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from report import machine, save

ROW = "Restormer"
STEPS = 4
# one fit of the QUICK Restormer in this process; prints its wall seconds as JSON
FIT = """
import json, sys, time
from restorelab.descanning import QUICK_BUDGET, build_row, descanning_data, train_descanner
out_dir, stop_at, compile = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
data = descanning_data()
trainer = train_descanner(build_row(sys.argv[4]), data, QUICK_BUDGET, out_dir, compile=compile,
                          progress=False, tensorboard=False)
started = time.perf_counter()
trainer.fit(resume=True, stop_at=stop_at)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def fit(out_dir: Path, stop_at: int, compile: bool, inductor_cache: Path) -> float:
    """Seconds of one ``fit`` to ``stop_at`` in a new process with ``inductor_cache``."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache)}
    command = [sys.executable, "-c", FIT, str(out_dir), str(stop_at), str(int(compile)), ROW]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"the fit of {out_dir} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def measure(folder: Path) -> dict[str, float]:
    """The four starts of one repeat (see module doc), in seconds."""
    run, cold_cache = folder / "compiled", folder / "inductor-cold"
    return {
        "eager": fit(folder / "eager", STEPS, False, folder / "inductor-eager"),
        "cold": fit(run, STEPS, True, cold_cache),
        "resume, run folder only": fit(run, 2 * STEPS, True, folder / "inductor-empty"),
        "resume, machine cache": fit(run, 3 * STEPS, True, cold_cache),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    repeats = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            repeats.append(measure(Path(folder)))
        print(f"repeat {repeat + 1}: {repeats[-1]}", file=sys.stderr)
    starts = list(repeats[0])
    lines = [
        f"The descanning table's QUICK {ROW}: seconds of `Trainer.fit` for {STEPS} steps, each "
        f"in a new process; {machine()}, torch {torch.__version__}, {args.repeats} repeats",
        "",
        "| start | seconds (min-max) |",
        "|---|---|",
        *(f"| {start} | {min(r[start] for r in repeats):.1f}-{max(r[start] for r in repeats):.1f} |"
          for start in starts),
    ]  # fmt: skip
    save("compile_cache", {"machine": machine(), "torch": torch.__version__, "row": ROW,
                           "steps": STEPS, "repeats": repeats}, lines)  # fmt: skip


if __name__ == "__main__":
    main()
