"""Helpers of the tests that run ``restorelab train`` as real processes (kill, resume, torchrun).

Run as a script, ``python tests/train_runs.py WHERE N -- TRAIN ARGS`` runs the command line's
``train`` in this process and SIGKILLs it at the N-th event WHERE: ``save`` (a checkpoint's
temporary file is written but not yet renamed into place) or ``score`` (inside a validation, after
N-1 images were scored, counting the crops checked before step 1). Under torchrun the kill takes
torchrun and every rank with it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]

# a small, fast run: SRCNN x2 on 16px patches, validated on two 32px images
TINY = ["--steps", "24", "--val-every", "8", "--checkpoint-every", "3", "--batch-size", "4",
        "--patch-size", "16", "--lr", "1e-3", "--seed", "3", "--device", "cpu"]  # fmt: skip


def image_folders(root: Path) -> tuple[Path, Path]:
    """Two folders of small random RGB images: (train, val)."""
    from restorelab.io import write_image

    generator = torch.Generator().manual_seed(0)
    for i in range(3):
        write_image(root / "train" / f"{i}.png", torch.rand(3, 40, 40, generator=generator))
    for i in range(2):
        write_image(root / "val" / f"{i}.png", torch.rand(3, 32, 32, generator=generator))
    return root / "train", root / "val"


def environment() -> dict[str, str]:
    """The environment of every child: this checkout first, one thread (same sums every run)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def train_args(data: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    """``restorelab train`` arguments of the tiny run on ``data`` into ``out``."""
    return ["train", "--data", str(data[0]), "--val", str(data[1]), *TINY, "--out", str(out),
            *extra]  # fmt: skip


def torchrun(nproc: int, args: list[str], kill_at: tuple[str, int] | None = None) -> list[str]:
    """The command that runs ``python -m restorelab ARGS`` on ``nproc`` CPU processes; with
    ``kill_at`` (WHERE, N), this module's script instead, which kills the run at that event."""
    target = (
        ["-m", "restorelab"] if kill_at is None else [__file__, kill_at[0], str(kill_at[1]), "--"]
    )
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", *target, *args]  # fmt: skip


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``command`` to its end; fail the test with its output when it does not exit 0."""
    done = subprocess.run(
        command, env=environment(), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def final_state(out: Path) -> tuple[dict[str, torch.Tensor], bytes]:
    """The weights in ``out/last.pt`` and the bytes of ``out/log.csv``."""
    state = torch.load(out / "last.pt", weights_only=True)
    return state["model"], (out / "log.csv").read_bytes()


def log_steps(out: Path) -> list[int]:
    """The steps of log.csv's training-loss rows."""
    with open(out / "log.csv") as handle:
        return [int(r["step"]) for r in csv.DictReader(handle) if r["name"] == "loss"]


def tensorboard_steps(out: Path) -> dict[str, list[int]]:
    """Every TensorBoard scalar tag of ``out`` -> the steps logged for it, in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, list[int]] = {}
    for events in sorted((out / "tensorboard").glob("events.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            steps.setdefault(tag, []).extend(e.step for e in accumulator.Scalars(tag))
    return steps


def _kill_at(where: str, nth: int) -> None:
    """Patch this process so that it SIGKILLs itself at the ``nth`` event ``where``."""
    count = 0

    def hit() -> None:
        nonlocal count
        count += 1
        if count == nth:
            if "TORCHELASTIC_RUN_ID" in os.environ:  # a rank: torchrun (its parent), the others
                agent = psutil.Process(os.getppid())
                ranks = agent.children()
                agent.kill()
                for rank in ranks:
                    if rank.pid != os.getpid():
                        rank.kill()
            os.kill(os.getpid(), signal.SIGKILL)

    if where == "save":  # torch.save writes save_atomic's temporary file; the rename follows
        save = torch.save

        def save_then_die(obj, handle, *args, **kwargs):
            save(obj, handle, *args, **kwargs)
            handle.flush()
            hit()

        torch.save = save_then_die
    elif where == "score":
        from restorelab.tasks import SuperResolution

        score = SuperResolution.score

        def score_or_die(self, *args, **kwargs):
            hit()
            return score(self, *args, **kwargs)

        SuperResolution.score = score_or_die
    else:
        raise ValueError(f"unknown kill point {where!r}")


if __name__ == "__main__":
    from restorelab.cli import main

    _kill_at(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[4:]))
