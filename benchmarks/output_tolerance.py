"""How far an honest re-run moves a competition model's outputs, against the grader's tolerance.

The grader re-runs each team's model on 2 test scans (fp32 on its CPU, as ``model.json``'s
``"inference"`` declares: tiles, self-ensemble) and rejects the team when its submitted
restoration of a scan differs from that re-run by more than
:data:`restorelab.competition.contract.OUTPUT_TOLERANCE` (Y-MAE, 8-bit levels). This benchmark
measures both sides of that line on synthetic test pages, from a whole-page fp32 re-run:

* **honest, same inference**: another thread count, fp16 autocast (its 10-bit mantissa is that
  of the TF32 a GPU's convolutions use by default, so this bounds a GPU's fp32 run from above)
  and bf16 autocast (CPU autocast here; a GPU's bf16 rounds the same way);
* **honest, not declared**: tiled inference and the self-ensemble, which change the outputs
  unless ``model.json`` declares them (then the re-run makes them the same way);
* **edits** that do not come from the model: one level brighter, a 2% contrast stretch, a light
  unsharp mask.

The models are the course's four trained references of chapters 1-4 on their own tasks' inputs
(networks trained to convergence: how far low precision moves a trained network), and the
descanning table's rows (:data:`restorelab.descanning.ROWS`) trained briefly on other synthetic
pages, on the scans: the QUICK networks for ``--steps`` steps and the competition-size KBNet,
Restormer and baseline (``"full"``) for ``--full-steps``. Each distance is a per-page Y-MAE
between both sides rounded to 8 bits.

    python benchmarks/output_tolerance.py [--steps 200] [--full-steps 30] [--pages 4] [--size 256]
    python benchmarks/output_tolerance.py --gpu   # the GPU session's part (scripts/gpu_session.sh)

Results: ``results/output_tolerance.{json,md}`` (about 16 minutes on 2 cores). ``--gpu``: the
four trained references restored on the GPU (float32 with TF32 convolutions, PyTorch's default;
float32 without TF32; bf16 autocast) against the CPU's float32 re-run, in
``results/output_tolerance_gpu.{json,md}`` (seconds on a GPU).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from report import RESULTS, machine, save
from torch import nn

from restorelab import descanning, pretrained
from restorelab.competition.contract import OUTPUT_TOLERANCE
from restorelab.data import SyntheticScans
from restorelab.device import pick_device
from restorelab.infer import predict
from restorelab.metrics import y_mae

Run = Callable[[nn.Module, torch.Tensor], torch.Tensor]
Models = dict[str, tuple[nn.Module, list[torch.Tensor]]]  # name -> (model, its inputs)


def _threads(count: int) -> Run:
    def run(model: nn.Module, scan: torch.Tensor) -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            return predict(model, scan)
        finally:
            torch.set_num_threads(before)

    return run


def _autocast(dtype: torch.dtype) -> Run:
    def run(model: nn.Module, scan: torch.Tensor) -> torch.Tensor:
        # predict's own autocast is for CUDA only and would switch this one off
        with torch.autocast("cpu", dtype=dtype):
            return model(scan[None])[0].float()

    return run


def _on_gpu(tf32: bool = True, dtype: torch.dtype | None = None) -> Run:
    """Restore on the GPU (the CPU when there is none: a dry run), with TF32 convolutions on or
    off (on is PyTorch's default) and optionally under autocast to ``dtype``."""

    def run(model: nn.Module, scan: torch.Tensor) -> torch.Tensor:
        device = pick_device("auto")
        default = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = tf32
        try:
            with torch.autocast(
                device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None
            ):
                return model.to(device)(scan[None].to(device))[0].float().cpu()
        finally:
            torch.backends.cudnn.allow_tf32 = default
            model.to("cpu")

    return run


def _unsharp(model: nn.Module, scan: torch.Tensor) -> torch.Tensor:
    out = predict(model, scan)
    blurred = F.avg_pool2d(F.pad(out[None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[0]
    return out + 0.3 * (out - blurred)


HONEST: dict[str, Run] = {  # the same inference as the re-run, another machine's arithmetic
    "2 threads": _threads(2),
    "fp16 autocast": _autocast(torch.float16),
    "bf16 autocast": _autocast(torch.bfloat16),
}
UNDECLARED: dict[str, Run] = {  # another inference than the re-run's (model.json must say so)
    "tiles 64 px": lambda model, scan: predict(model, scan, tile=64),
    "tiles 128 px": lambda model, scan: predict(model, scan, tile=128),
    "self-ensemble": lambda model, scan: predict(model, scan, self_ensemble=True),
}
GPU: dict[str, Run] = {  # --gpu: a team's restoration on a GPU, against the grader's CPU
    "GPU float32 (TF32 convolutions: the default)": _on_gpu(),
    "GPU float32, TF32 off": _on_gpu(tf32=False),
    "GPU bf16 autocast": _on_gpu(dtype=torch.bfloat16),
}
EDITS: dict[str, Run] = {  # not the model's output
    "one level brighter": lambda model, scan: predict(model, scan) + 1 / 255,
    "contrast x1.02": lambda model, scan: (predict(model, scan) - 0.5) * 1.02 + 0.5,
    "unsharp mask 0.3": _unsharp,
}


def _references(pages: list[tuple[torch.Tensor, torch.Tensor]]) -> Models:
    """The course's fully trained references of chapters 1-4, each on its own task's inputs
    made from the clean pages (a deep trained network's bf16 error, not a descanner)."""
    generator = torch.Generator().manual_seed(0)
    trained = {}
    for name in pretrained.available():
        task = pretrained.task(name)
        inputs = [task.make_pair(clean[None], generator)[0][0] for _, clean in pages]
        trained[f"{name} (reference, own task)"] = (pretrained.load(name), inputs)
    return trained


def _descanners(pages: list[tuple[torch.Tensor, torch.Tensor]], steps: int, full_steps: int,
                seed: int) -> Models:  # fmt: skip
    """The descanning table's rows, trained briefly on other synthetic pages, on the scans."""
    data = descanning.descanning_data(pages=4, val_pages=1, size=192, seed=seed)
    scans = [scan for scan, _ in pages]
    trained = {}
    for setting, count, rows in (
        ("QUICK", steps, descanning.ROWS),
        ("full", full_steps, ("KBNet", "Restormer", descanning.BASELINE_ROW)),
    ):
        budget = descanning.Budget(steps=count, batch_size=4, patch_size=32, lr=1e-3, seed=seed)
        for row in rows:
            started = time.perf_counter()
            model = descanning.train_row(row, data, budget, setting)
            trained[f"{row} ({setting})"] = (model, scans)
            print(f"trained {row} ({setting}) in {time.perf_counter() - started:.0f} s", flush=True)
    return trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps of QUICK rows")
    parser.add_argument("--full-steps", type=int, default=30, help="... of competition sizes")
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true",
                        help="the trained references restored on the GPU against the CPU "
                        "(results/output_tolerance_gpu.*; a CPU runs it as a dry run)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results folder")
    args = parser.parse_args()
    synthetic = SyntheticScans(args.pages, args.size, seed=args.seed + 100)
    pages = [synthetic[i] for i in range(args.pages)]
    if args.gpu:  # thread counts move no page (the CPU table), so the re-run takes them all
        name, trained = "output_tolerance_gpu", _references(pages)
        kinds = dict.fromkeys(GPU, "honest, same inference")
        note = "the course's four trained references on their own tasks"
    else:
        torch.set_num_threads(1)  # the grader's re-run: one thread per team
        name = "output_tolerance"
        trained = {**_references(pages),
                   **_descanners(pages, args.steps, args.full_steps, args.seed)}  # fmt: skip
        kinds = {**dict.fromkeys(HONEST, "honest, same inference"),
                 **dict.fromkeys(UNDECLARED, "honest, not declared"),
                 **dict.fromkeys(EDITS, "edit")}  # fmt: skip
        note = (f"the trained references and the descanners (QUICK ones trained {args.steps} "
                f"steps, competition sizes {args.full_steps})")  # fmt: skip
    runs = {**HONEST, **UNDECLARED, **GPU, **EDITS}
    result = {"machine": machine(), "tolerance": OUTPUT_TOLERANCE, "pages": args.pages,
              "size": args.size, "models_note": note, "kinds": kinds, "models": {}}  # fmt: skip
    for model_name, (model, inputs) in trained.items():
        with torch.no_grad():
            reference = [predict(model, x) for x in inputs]
            distances = {}
            for label in kinds:
                distances[label] = [y_mae(runs[label](model, x), r)
                                    for x, r in zip(inputs, reference, strict=True)]  # fmt: skip
        result["models"][model_name] = distances
        print(model_name, {k: round(max(v), 3) for k, v in distances.items()}, flush=True)
    save(name, result, _table(result), args.out)


def _table(result: dict) -> list[str]:
    tolerance, found, kinds = result["tolerance"], result["models"], result["kinds"]
    lines = [
        f"# Output check: honest re-runs against edits ({result['machine']})",
        "",
        "`python benchmarks/output_tolerance.py`: per-page Y-MAE (8-bit levels) from the grader's "
        f"re-run (fp32 on the CPU, whole pages) on {result['pages']} synthetic test pages of "
        f"{result['size']} px, over {len(found)} models: {result['models_note']}. The grader "
        f"rejects a page over {tolerance}.",
        "",
        "| way the outputs were made | kind | smallest page | largest page | pages over the "
        "tolerance |",
        "|---|---|---|---|---|",
    ]
    for label, kind in kinds.items():
        pages = [page for distances in found.values() for page in distances[label]]
        over = sum(page > tolerance for page in pages)
        lines.append(f"| {label} | {kind} | {min(pages):.3f} | {max(pages):.3f} | "
                     f"{over} of {len(pages)} |")  # fmt: skip
    lines += ["", "The largest page of each model:", "",
              "| model | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]  # fmt: skip
    for name, distances in found.items():
        cells = " | ".join(f"{max(distances[label]):.3f}" for label in kinds)
        lines.append(f"| {name} | {cells} |")
    return lines


if __name__ == "__main__":
    main()
