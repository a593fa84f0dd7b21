"""Where a Trainer step's time goes on a GPU: data, degradation, network, optimiser, sync.

The first GPU check (benchmarks/gpu_check.py) found the Trainer far below what an H100 can do
(Restormer's competition preset at 5.6 steps/s). This splits one model's step into its parts,
each timed alone with CUDA events after a warm-up, and adds the profiler's top operators:

    loader      the DataLoader's batches (RandomPatches on the CPU, num_workers as given)
    make_pair   the task's degradation of a device batch
    forward+backward+optimizer   the network on a fixed device batch, as train_step runs it
    trainer     Trainer.fit for the same number of steps (everything, as users run it)

    PYTHONPATH=. python3 benchmarks/step_breakdown.py [--models restormer kbnet] [--out DIR]

Writes ``DIR/step_breakdown.md`` (default benchmarks/results), naming the device.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check import _trainer, device_name  # noqa: E402  (the same models, presets, batches)


def _timed(fn, repeats: int, cuda: bool) -> float:
    """Milliseconds per call of ``fn`` after 3 warm-up calls."""
    for _ in range(3):
        fn()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats * 1000


def _fit_seconds(trainer, stop_at: int, cuda: bool) -> float:
    """Seconds for ``trainer`` to train on to step ``stop_at``."""
    started = time.perf_counter()
    trainer.fit(stop_at=stop_at)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def breakdown(model: str, dry: bool, repeats: int) -> tuple[list[tuple[str, float]], str]:
    trainer = _trainer(model, dry, 10_000, amp="off")
    cuda = trainer.device.type == "cuda"
    rows = []
    loader = iter(trainer._loader())
    rows.append(("loader (CPU, num_workers=0)", _timed(lambda: next(loader), repeats, False)))
    batch = next(loader).to(trainer.device)
    gen = torch.Generator(trainer.device).manual_seed(0)
    rows.append(("make_pair", _timed(lambda: trainer.make_pair(batch, gen), repeats, cuda)))
    inputs, target = trainer.make_pair(batch, gen)

    def network_step() -> None:
        loss = F.l1_loss(trainer.forward(inputs), target)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    rows.append(("forward+backward+optimizer", _timed(network_step, repeats, cuda)))

    def with_sync() -> None:
        network_step()
        float(torch.zeros((), device=trainer.device))  # what reading the loss each step costs

    rows.append(("... + a host sync per step", _timed(with_sync, repeats, cuda)))
    torch.backends.cudnn.benchmark = True
    rows.append(
        ("forward+backward+optimizer, cudnn.benchmark", _timed(network_step, repeats, cuda))
    )
    torch.backends.cudnn.benchmark = False
    options = [("", trainer), ("num_workers=4", {"num_workers": 4})]
    options += [] if dry else [("torch.compile", {"compile": True})]
    for name, setting in options:
        other = setting if name == "" else _trainer(model, dry, 10_000, amp="off", **setting)
        seconds = _fit_seconds(other, 5, cuda)  # includes compiling
        if name:
            rows.append((f"  its first 5 steps, {name} (s)", seconds))
        ms = _fit_seconds(other, 5 + repeats, cuda) / repeats * 1000
        rows.append((f"Trainer.fit step{', ' + name if name else ''}", ms))
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if cuda else []
    )
    with torch.profiler.profile(activities=activities) as profile:
        for _ in range(5):
            network_step()
        if cuda:
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return rows, profile.key_averages().table(sort_by=sort, row_limit=12, max_name_column_width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--models", nargs="+", default=["restormer", "kbnet", "dncnn", "srcnn"])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    dry = not torch.cuda.is_available()
    torch.backends.cudnn.benchmark = False  # as the Trainer runs
    lines = [f"# Where a Trainer step's time goes, on {device_name(dry)}", "",
             f"torch {torch.__version__}; fp32 eager; ms per step, mean of {args.repeats} after warm-up.", ""]  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("step_breakdown_dry_run.md" if dry else "step_breakdown.md")
    for model in args.models:
        rows, table = breakdown(model, dry, 2 if dry else args.repeats)
        lines += [f"## {model}", "", "| part | ms |", "|---|---|"]
        lines += [f"| {name} | {ms:.2f} |" for name, ms in rows]
        lines += ["", "Top operators (5 network steps):", "", "```", table, "```", ""]
        print("\n".join(lines[-len(rows) - 8 :]), flush=True)
        path.write_text("\n".join(lines) + "\n")  # after each model: a slow compile loses none
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
