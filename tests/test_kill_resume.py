"""SIGKILL a real ``restorelab train`` process again and again; resuming ends as if never killed."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import torch
from train_runs import (
    ROOT,
    environment,
    final_state,
    image_folders,
    run,
    tensorboard_steps,
    train_args,
)

# (where, n): the child kills itself at its n-th event (see train_runs); ("timer", None): the
# test kills it at a random moment. The first kill hits the very first checkpoint write (step 3),
# the second the middle of the first validation (2 crops checked before step 1, then 2 images, at
# step 8), then the write of step 15, the validation of step 16 and the write of step 21: all
# before the 24th step, however fast the machine. The random kills come last, where the run may
# already have finished on a fast machine.
KILLS = [("save", 1), ("score", 4), ("save", 3), ("score", 4), ("save", 2), ("timer", None),
         ("timer", None), ("timer", None)]  # fmt: skip


def _launch(command: list[str], kill_after: float | None) -> str:
    """Run ``command``; SIGKILL it after ``kill_after`` seconds. Returns how it ended."""
    child = subprocess.Popen(
        command, env=environment(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, err = child.communicate(timeout=kill_after or 300)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return "killed by the test"
    assert child.returncode in (0, -9), err.decode()[-3000:]
    return "finished" if child.returncode == 0 else "killed itself"


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    data = image_folders(tmp_path)
    run([sys.executable, "-m", "restorelab", *train_args(data, tmp_path / "straight")])
    out, rng, ends = tmp_path / "killed", random.Random(0), []
    started = time.perf_counter()
    for where, n in KILLS:
        resume = ["--resume"] if out.is_dir() and any(out.iterdir()) else []
        args = train_args(data, out, *resume)
        if where == "timer":
            delay = rng.uniform(0.5, 6.0)
            command, where = [sys.executable, "-m", "restorelab", *args], f"timer {delay:.1f}s"
        else:
            delay, script = None, str(ROOT / "tests" / "train_runs.py")
            command, where = [sys.executable, script, where, str(n), "--", *args], f"{where} {n}"
        ends.append((where, _launch(command, delay)))
    run([sys.executable, "-m", "restorelab", *train_args(data, out, "--resume")])
    print(f"kills: {ends}; {time.perf_counter() - started:.0f} s")
    assert [end for _, end in ends[:5]] == ["killed itself"] * 5, ends

    weights, log = final_state(out)
    straight_weights, straight_log = final_state(tmp_path / "straight")
    assert log == straight_log
    for name, value in straight_weights.items():
        assert torch.equal(value, weights[name]), name
    best = torch.load(out / "best.pt", weights_only=True)
    straight_best = torch.load(tmp_path / "straight" / "best.pt", weights_only=True)
    assert best["step"] == straight_best["step"] and best["best"] == straight_best["best"]
    assert all(torch.equal(v, best["model"][k]) for k, v in straight_best["model"].items())
    # TensorBoard: no duplicated step after the resumes, and no temporary file left behind
    assert tensorboard_steps(out) == tensorboard_steps(tmp_path / "straight")
    assert not list(out.glob(".*.tmp"))
