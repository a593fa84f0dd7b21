"""The descanning table: the course's models trained by one code path on scanned pages.

Taught in chapters 5 (KBNet) and 6 (Restormer); chapter 9 (the competition) reads and extends
the table. Every row is trained by :func:`train_descanner` with the same :class:`Budget` (steps,
batch, patch size, learning rate, loss, seed) on the same pages, and scored by
:func:`evaluate_descanner` on the same held-out pages:

* **Y-MAE**, the competition metric: mean absolute error of the full-range 8-bit Y channel
  (``0.299 R + 0.587 G + 0.114 B``, as OpenCV), per pixel (:func:`restorelab.metrics.y_mae`),
  averaged over the pages (lower is better);
* **PSNR** on RGB, outputs rounded to 8 bits, peak 255 (higher is better).

Data (:func:`descanning_data`): :class:`restorelab.data.SyntheticScans` pages (``QUICK`` and
whenever no folder is given), or a folder in the DESCAN-18K layout (``train|valid|test/scan|
clean``) or the 2023 course layout (``train/scan``, ``train/clean``, ``test/scan``; its test pages
have no clean originals, so the last ``val_pages`` training pairs are held out).

The rows (:data:`ROWS`): DnCNN (chapter 3), an SRResNet-style network at x1 (chapter 4's
MSRResNet without upsampling: same-size in, same-size out), KBNet (chapter 5) and Restormer
(chapter 6), and chapter 9's competition baseline (a small Restormer, quick to train: 1.7M
parameters in ``"full"``), each with a tiny configuration for ``QUICK`` and the real one for ``"full"``.
The measured rows live in ``descanning.csv`` beside this file (:func:`load_table`,
:func:`store_rows`); ``python -m restorelab.descanning --setting QUICK`` trains and stores them
all. The 2023 course's own leaderboard numbers (another metric: the MAE of one mean-Y value per
test image, on Kaggle's hidden pages) are in :data:`COURSE_2023`, shown by
:func:`course2023_table` in a table of their own, never in our Y-MAE column.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from restorelab import metrics, models
from restorelab.comparison import with_quick_numbers, within_tolerance
from restorelab.data import PairedPatches, SyntheticScans, course2023, descan18k
from restorelab.device import pick_device
from restorelab.infer import predict
from restorelab.train import TrainConfig, Trainer, fast_settings, seed_everything

TABLE_FILE = Path(__file__).with_name("descanning.csv")
COLUMNS = ("model", "registry", "params", "data", "setting", "steps", "batch", "patch", "seed",
           "y_mae", "psnr")  # fmt: skip
KEY = ("model", "data", "setting")
# A QUICK number's tolerance (benchmarks/quick_spread.py measures it), stored after the COLUMNS
TOLERANCES = ("y_mae_tol", "psnr_tol")
SETTINGS = ("QUICK", "full")
INPUT_ROW = "scan (no model)"
BASELINE_ROW = "Restormer small (ch. 9 baseline)"

# row -> (registry name, QUICK constructor arguments, full constructor arguments)
ROWS: dict[str, tuple[str, dict, dict]] = {
    "DnCNN": ("dncnn", {"depth": 8, "features": 32}, {"depth": 20, "features": 64}),
    "SRResNet-style x1": (
        "msrresnet",
        {"features": 32, "num_blocks": 4, "upscale": 1},
        {"features": 64, "num_blocks": 16, "upscale": 1},
    ),
    "KBNet": (
        "kbnet",
        {"width": 16, "enc_blocks": (1, 1), "middle_blocks": 1, "dec_blocks": (1, 1)},
        {"preset": "competition"},
    ),
    "Restormer": (
        "restormer",
        {"dim": 16, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
        {"preset": "competition"},
    ),
    BASELINE_ROW: (
        "restormer",
        {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
        {"dim": 16, "num_blocks": (2, 3, 3, 4), "num_refinement_blocks": 2},
    ),
}

# The 2023 course's leaderboard (Kaggle, hidden test pages): MAE over images of one mean-Y value
# per image. Not our per-pixel Y-MAE: never put them in one column.
COURSE_2023 = {"DnCNN": 28.5, "SRResNet": 4.74, "KBNet": 3.47, "Restormer": 2.466}
COURSE_2023_NOTE = (
    "The 2023 course's numbers are its Kaggle leaderboard: one mean-Y value per test page, scored "
    "by the MAE over pages (per-image mean-Y MAE), on hidden pages with other data and far longer "
    "training (Restormer: 600 epochs). They are not comparable with the per-pixel Y-MAE of this "
    "course's table. DnCNN's 28.5 is not the architecture: the team that reported it scored about "
    "28 with its first SRResNet too, and 4.74 once it removed a normalisation to [-1, 1] whose "
    "outputs were still clamped to [0, 1] (the clamping bug of chapter 3, which came with the "
    "course's starter code, not from the team): half of the output range was cut off."
)


@dataclass
class Budget:
    """What every row of one table shares: steps, batch, patch side, optimiser, loss and seed.

    ``progressive``: phases ``(first_step, patch, batch)`` (see :class:`TrainConfig`); the
    patches are then cut at the largest patch of the schedule and ``batch_size`` must be its
    largest batch.
    """

    steps: int = 60
    batch_size: int = 4
    patch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    loss: str = "l1"
    seed: int = 0
    progressive: tuple[tuple[int, int, int], ...] = ()
    fast: bool = False  # the --fast preset (restorelab.train.fast_settings) for the device
    extra: dict = field(default_factory=dict)

    def train_config(self, **overrides) -> TrainConfig:
        """The :class:`TrainConfig` of this budget (``overrides``: logging, device, AMP ...)."""
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
            weight_decay=self.weight_decay, scheduler=self.scheduler, seed=self.seed,
            progressive=self.progressive, monitor="y_mae", **overrides,
        )  # fmt: skip

    @property
    def loader_patch(self) -> int:
        """The side of the patches the dataset cuts (the largest patch of a progressive run)."""
        return max([self.patch_size, *(p for _, p, _ in self.progressive)])


# The budgets of the stored table: QUICK (a minute on a CPU per row) and full (a GPU).
QUICK_BUDGET = Budget(steps=60, batch_size=4, patch_size=32, lr=1e-3)
FULL_BUDGET = Budget(steps=100_000, batch_size=16, patch_size=128, lr=3e-4, fast=True)


@dataclass
class DescanData:
    """Training pairs and held-out pages: ``train`` yields (scan, clean) float (3, H, W) pairs in
    [0, 1]; ``val`` is a list of such pairs; ``name`` labels the table rows."""

    name: str
    train: Dataset
    val: list[tuple[torch.Tensor, torch.Tensor]]


def descanning_data(
    root: str | Path | None = None,
    pages: int = 4,
    val_pages: int = 2,
    size: int | tuple[int, int] = 192,
    seed: int = 0,
) -> DescanData:
    """The pages of the table.

    ``root`` None: ``pages`` synthetic training pages and ``val_pages`` held-out ones (another
    seed) of ``size``, rendered once and kept in memory. Otherwise a DESCAN-18K tree (its
    ``valid`` split, first ``val_pages`` pages, is held out) or a 2023 course folder (the last
    ``val_pages`` training pairs are held out); ``pages`` and ``size`` are then unused.
    """
    if root is None:
        train = SyntheticScans(pages, size, seed=seed)
        held_out = SyntheticScans(val_pages, size, seed=seed + 1)
        return DescanData(
            f"synthetic {pages} pages",
            [train[i] for i in range(pages)],
            [held_out[i] for i in range(val_pages)],
        )
    root = Path(root)
    if (root / "test" / "scan").is_dir() and not (root / "valid").is_dir():
        pairs, _ = course2023(root)
        if len(pairs) <= val_pages:
            raise ValueError(f"{root}: {len(pairs)} training pairs, need more than {val_pages}")
        train = torch.utils.data.Subset(pairs, range(len(pairs) - val_pages))
        val = [pairs[i] for i in range(len(pairs) - val_pages, len(pairs))]
        return DescanData("2023 course", train, val)
    valid = descan18k(root, "valid")
    return DescanData(
        "DESCAN-18K",
        descan18k(root, "train"),
        [valid[i] for i in range(min(val_pages, len(valid)))],
    )


def build_row(row: str, setting: str = "QUICK", seed: int = 0) -> nn.Module:
    """The model of table row ``row`` (see :data:`ROWS`) in ``setting``, its weights seeded."""
    card = row_card(row, setting)
    seed_everything(seed)  # the initial weights depend on the seed only
    return models.build(card["architecture"], card["preset"], **card["kwargs"])


def row_card(row: str, setting: str = "QUICK") -> dict:
    """How to build the model of ``row`` in ``setting``: ``{"architecture": registry name,
    "preset": ..., "kwargs": {...}}``, the ``model.json`` of a competition submission
    (:mod:`restorelab.competition.contract`; chapter 9)."""
    if row not in ROWS:
        raise KeyError(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    name, quick, full = ROWS[row]
    kwargs = dict(quick if setting == "QUICK" else full)
    preset = kwargs.pop("preset", "paper")
    return {"architecture": name, "preset": preset,
            "kwargs": {"in_channels": 3, "out_channels": 3, **kwargs}}  # fmt: skip


@torch.no_grad()
def evaluate_descanner(
    model: nn.Module | None, pages: Sequence[tuple[torch.Tensor, torch.Tensor]], tile: int = 0
) -> dict[str, float]:
    """Mean Y-MAE (per pixel, full-range 8-bit Y) and RGB PSNR over ``pages`` of (scan, clean).

    ``model`` None scores the scans themselves. ``tile``: tiled inference (see
    :func:`restorelab.infer.predict`) for pages too large for the device.
    """
    y_mae, psnr = [], []
    for scan, clean in pages:
        out = scan if model is None else predict(model, scan, tile=tile).clamp(0, 1)
        y_mae.append(metrics.y_mae(out, clean))
        psnr.append(metrics.psnr(out, clean))
    return {"y_mae": sum(y_mae) / len(y_mae), "psnr": sum(psnr) / len(psnr)}


def train_descanner(
    model: nn.Module,
    data: DescanData,
    budget: Budget,
    out_dir: str | Path | None = None,
    **config_overrides,
) -> Trainer:
    """A :class:`Trainer` for ``model`` on ``data``'s pairs with ``budget``, validated on
    ``data.val`` (Y-MAE and PSNR; ``best.pt`` follows the Y-MAE, the competition's score).
    Call ``.fit()`` on it."""
    if budget.fast:
        device = pick_device(config_overrides.get("device", "auto"))
        config_overrides = {**fast_settings(model, device), **config_overrides}
    config = budget.train_config(**config_overrides)
    config.extra = {"descanning": data.name, "loss": budget.loss, "patch_size": budget.patch_size,
                    **budget.extra}  # fmt: skip
    length = budget.steps * budget.batch_size
    patches = PairedPatches(data.train, budget.loader_patch, length, seed=budget.seed)
    loss = {"l1": F.l1_loss, "l2": F.mse_loss}[budget.loss]
    return Trainer(
        model, patches, loss, config, validate=lambda net: evaluate_descanner(net, data.val),
        out_dir=out_dir,
    )  # fmt: skip


def compare_at_budget(
    runs: dict[str, tuple[nn.Module, float]],
    data: DescanData,
    budget: Budget,
    spread_rows: dict[str, str] | None = None,
    measured: bool = False,
) -> str:
    """Two networks trained on the same ``data`` with the same ``budget``, side by side (labs 5
    and 6: an attention network against a plain CNN).

    ``runs``: name -> (trained model, training seconds). Each line gives the parameters, the
    held-out Y-MAE and PSNR, the peak memory of one training step at the budget's largest
    batch (:func:`restorelab.profiling.training_step_memory`) and the seconds per step. The
    verdict weighs the Y-MAE gap against the seed and CPU spreads of the stored QUICK rows
    ``spread_rows`` (name -> row of ``descanning.csv``; None: no spread known) and calls it an
    order only when the gap is larger than both spreads together and ``measured`` says that
    those spreads were measured at this very budget.
    """
    from restorelab.profiling import training_step_memory

    phases = budget.progressive or ((0, budget.patch_size, budget.batch_size),)
    _, patch, size = max(phases, key=lambda phase: phase[1] ** 2 * phase[2])
    schedule = f"phases (first step, patch, batch) {budget.progressive}" if budget.progressive else (
        f"{budget.batch_size} patches of {budget.patch_size}x{budget.patch_size}")  # fmt: skip
    model = next(iter(runs.values()))[0]
    device = next(model.parameters()).device
    lines = [f"budget: {budget.steps} steps, {schedule}, seed {budget.seed}, {data.name}; device "
             f"{device}; memory at {size} patches of {patch}x{patch}",
             f"{'model':22s} {'params':>9s}  Y-MAE  PSNR (dB)  step memory  s/step"]  # fmt: skip
    scores = {}
    for name, (model, seconds) in runs.items():
        batch = torch.rand(size, 3, patch, patch, device=device)
        peak = training_step_memory(model, batch)
        scores[name] = evaluate_descanner(model.eval(), data.val)
        lines.append(f"{name:22s} {models.count_params(model):>9,}  {scores[name]['y_mae']:5.2f}  "
                     f"{scores[name]['psnr']:9.2f}  {peak / 2**20:8.1f} MiB  "
                     f"{seconds / budget.steps:6.3f}")  # fmt: skip
    (first, a), (second, b) = ((name, score["y_mae"]) for name, score in scores.items())
    ahead = first if a < b else second
    verdict = f"{ahead} has the lower Y-MAE by {abs(a - b):.2f}, one seed each"
    if spread_rows is None:
        lines.append(f"{verdict}; the spread of this budget was not measured: train both with a "
                     "few more seeds before calling it an order")  # fmt: skip
        return "\n".join(lines)
    tolerance = {row["model"]: row["y_mae_tol"] for row in load_table() if row["setting"] == "QUICK"}
    spreads = {name: tolerance[spread_rows[name]] for name in runs}
    noise = sum(spreads.values())
    moves = " and ".join(f"±{spread:g} ({name})" for name, spread in spreads.items())
    verdict += f"; seeds and CPUs move the table's QUICK runs of these networks by up to {moves}: "
    if abs(a - b) <= noise:
        verdict += f"the gap is within their sum ({noise:.2f}), so this run does not rank them"
    elif measured:
        verdict += "the gap is larger than both together, an order at this budget"
    else:
        verdict += ("the gap is larger than both together, but this budget's own spread was not "
                    "measured: check with more seeds before calling it an order")  # fmt: skip
    lines.append(verdict)
    return "\n".join(lines)


def train_row(
    row: str, data: DescanData, budget: Budget, setting: str = "QUICK",
    out_dir: str | Path | None = None, **config_overrides,
) -> nn.Module:  # fmt: skip
    """Build the model of ``row`` in ``setting``, train it with ``budget`` on ``data`` and
    return it in eval mode. ``out_dir``: the run folder (resumed when it holds a run, so a
    finished run is loaded rather than trained again); None keeps nothing."""
    model = build_row(row, setting, budget.seed)
    trainer = train_descanner(model, data, budget, out_dir, **config_overrides)
    trainer.fit(resume=out_dir is not None)
    return trainer.model.eval()


def table_row(
    row: str, model: nn.Module | None, data: DescanData, budget: Budget, setting: str
) -> dict:
    """The row of ``descanning.csv`` for ``model`` (None: the scans), scored on ``data.val``."""
    scores = evaluate_descanner(model, data.val)
    return dict(
        model=row, registry="" if model is None else ROWS[row][0],
        params=0 if model is None else models.count_params(model), data=data.name,
        setting=setting, steps=budget.steps, batch=budget.batch_size, patch=budget.patch_size,
        seed=budget.seed, y_mae=round(scores["y_mae"], 3), psnr=round(scores["psnr"], 2),
    )  # fmt: skip


def run_table(
    data: DescanData, budget: Budget, setting: str = "QUICK", rows: Sequence[str] = tuple(ROWS),
    out_dir: str | Path | None = None, **config_overrides,
) -> list[dict]:  # fmt: skip
    """Train and score every row of ``rows`` with one ``budget`` on ``data``; the scans' own
    scores come first. ``out_dir``: each row's run goes to ``out_dir/<registry name>``."""
    table = [table_row(INPUT_ROW, None, data, budget, setting)]
    for row in rows:
        run = None if out_dir is None else Path(out_dir) / ROWS[row][0]
        model = train_row(row, data, budget, setting, run, **config_overrides)
        table.append(table_row(row, model, data, budget, setting))
    return table


# ------------------------------------------------------------------------ the stored table
def _typed(row: dict) -> dict:
    missing = [name for name in COLUMNS if name not in row]
    if missing:
        raise ValueError(f"descanning row {row} lacks {missing}")
    ints = ("params", "steps", "batch", "patch", "seed")
    tolerances = {k: float(row[k]) if row.get(k) not in (None, "") else None for k in TOLERANCES}
    return {**{k: row[k] for k in COLUMNS}, **{k: int(row[k]) for k in ints},
            "y_mae": float(row["y_mae"]), "psnr": float(row["psnr"]), **tolerances}  # fmt: skip


def load_table(path: str | Path = TABLE_FILE) -> list[dict]:
    """The stored rows of ``path`` (the :data:`COLUMNS` and :data:`TOLERANCES`), in file order."""
    with open(path, newline="") as handle:
        return [_typed(row) for row in csv.DictReader(handle)]


def _write(rows: Sequence[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS + TOLERANCES, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    os.replace(tmp, path)


def store_rows(rows: Sequence[dict], path: str | Path = TABLE_FILE) -> None:
    """Add ``rows`` to ``path``, replacing those with the same (model, data, setting) but keeping
    their tolerances; atomic."""
    path = Path(path)
    kept = {tuple(row[k] for k in KEY): row for row in load_table(path)} if path.exists() else {}
    new = []
    for row in map(_typed, rows):
        old = kept.pop(tuple(row[k] for k in KEY), {})
        new.append({**row, **{k: row[k] if row[k] is not None else old.get(k) for k in TOLERANCES}})
    _write([*kept.values(), *new], path)


def matches_stored(live: Sequence[dict], path: str | Path = TABLE_FILE) -> bool:
    """True when each live row has a stored twin within its tolerances of Y-MAE and PSNR."""
    return within_tolerance([_typed(row) for row in live], load_table(path), KEY, ("y_mae", "psnr"))


def set_quick_numbers(numbers: dict, path: str | Path = TABLE_FILE) -> None:
    """Store measured QUICK values and tolerances (``numbers[(model, data, metric)]``: ``base``
    and ``tolerance``), atomically."""
    _write(
        [_typed(row) for row in with_quick_numbers(load_table(path), numbers, "data")], Path(path)
    )


@dataclass
class DescanTable:
    """Rows shown as a Markdown table in notebooks (``str`` gives the same Markdown)."""

    rows: list[dict]

    def __str__(self) -> str:
        lines = [
            "| model | params | data | setting | steps x batch x patch | seed "
            "| Y-MAE (per pixel, lower is better) | PSNR RGB (dB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            params = f"{r['params']:,}" if r["params"] else ""
            spread = {
                k: f" ± {r[k + '_tol']:g}" if r.get(k + "_tol") else "" for k in ("y_mae", "psnr")
            }
            lines.append(f"| {r['model']} | {params} | {r['data']} | {r['setting']} | "
                         f"{r['steps']} x {r['batch']} x {r['patch']}² | {r['seed']} | "
                         f"{r['y_mae']:.3f}{spread['y_mae']} | {r['psnr']:.2f}{spread['psnr']} |")  # fmt: skip
        lines.append(
            "\nEvery row: the same pages, steps, patches, optimiser, loss and seed (one code "
            "path, `restorelab.descanning`). Y-MAE: mean |Y_out - Y_clean| on full-range 8-bit "
            "Y over the held-out pages' pixels."
        )
        if any(r.get("y_mae_tol") for r in self.rows):
            lines.append(
                "± : how far another CPU (AVX2 or AVX-512 kernels), thread count or seed moves "
                "the number of a run this short (1.5 times the largest move measured by "
                "`benchmarks/quick_spread.py`): rows closer than that are not ranked by it."
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return str(self)


def descanning_table(
    setting: str = "QUICK", live: Sequence[dict] = (), path: str | Path = TABLE_FILE
) -> DescanTable:
    """The stored rows of ``setting``, ``live`` rows replacing stored ones with their key, in
    the order of :data:`ROWS` (the scans first)."""
    rows = {tuple(r[k] for k in KEY): r for r in load_table(path) if r["setting"] == setting}
    for row in map(_typed, live):
        rows[tuple(row[k] for k in KEY)] = row
    order = [INPUT_ROW, *ROWS]
    return DescanTable(sorted(rows.values(), key=lambda r: (r["data"], order.index(r["model"]))))


def course2023_table() -> str:
    """The 2023 course's leaderboard numbers, labelled with their own metric, and the note."""
    lines = ["| model (2023 course team) | per-image mean-Y MAE, Kaggle leaderboard |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in COURSE_2023.items()]
    return "\n".join(lines) + "\n\n" + COURSE_2023_NOTE


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m restorelab.descanning``: train every row and store them in descanning.csv
    (``--check``: compare them with the stored rows instead; ``--json``: write them to a file)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--setting", choices=SETTINGS, default="QUICK")
    parser.add_argument("--data", help="a DESCAN-18K or 2023 course folder (default: synthetic)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", help="run folders (resumable); default: none kept")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="the runs' seed (stored rows: 0)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="store nothing; exit 1 when a row is outside its stored tolerance",
    )
    mode.add_argument("--json", metavar="PATH", help="store nothing; write the rows to PATH")
    args = parser.parse_args(argv)
    quick = args.setting == "QUICK"
    data = descanning_data(args.data) if quick else descanning_data(args.data, 200, 8, 512)
    budget = dataclasses.replace(QUICK_BUDGET if quick else FULL_BUDGET, seed=args.seed)
    rows = run_table(data, budget, args.setting, args.rows, args.out, device=args.device,
                     progress=not quick, tensorboard=False)  # fmt: skip
    if args.check:
        return 0 if matches_stored(rows) else 1
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    store_rows(rows)
    print(descanning_table(args.setting))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
