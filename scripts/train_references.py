"""Train, score and publish the reference checkpoints of restorelab.pretrained (one script reruns them all).

Five steps, each a subcommand:

    python scripts/train_references.py data --out runs/refdata
        the training images, small enough to travel with the working tree (--max-mb, 14 MB):
        centre crops (--crop, 256 px) of ../shared/datasets/TrainPool's PNGs (Urban100,
        Manga109) and the embedded training photos except "camera" (it re-creates Set12's
        cameraman scene), as lossless WebP; runs/ is git-ignored, so carry runs/refdata
    python scripts/train_references.py train --data runs/refdata --out runs/references --minutes 5
        trains every reference at once on one GPU, one process per job (JOBS), each stopping in
        time for its scoring before --minutes are up (the last one is killed 30 s later): the
        chapter 1-4 references (an ordinary `restorelab train --fast`, whose exact command goes
        into the card) and the modern half (chapters 5-9, in Python: the descanning table, the
        ESRGAN pair and its interpolation sweep, the inpainter's three strategies and the x2
        upscaler). Every run resumes from its last.pt. --dry-run: the same code paths with tiny
        models, pages and steps (a few minutes on 2 CPU cores), into a temporary --out only
    python scripts/train_references.py summary --runs runs/references
        what every job measured (the descanning order by Y-MAE, the targets met or missed)
    python scripts/train_references.py pack --runs runs/references --to references.tar.gz
        each run's weights (safetensors), logs, run.json and result.json in one archive
    python scripts/train_references.py publish --runs runs/references
        chapters 1-4: scores each run's best weights on its benchmarks; the modern half: takes
        the scores measured on the GPU (result.json); both store the weights as safetensors
        (fp16 where that moves no PSNR by more than 0.01 dB) with the model card, its targets
        recorded as met or missed. Weights over 4 MB go to --hosted (no file over 4 MB is
        tracked; the card says where a user puts them), the rest to --weights (default: restorelab/weights);
        a KBNet reference also stores chapter 5's maps of its dominant bases
        (basis-maps NAME: those maps again, from NAME's published weights)

The chapter 5-9 jobs: scripts/reference_jobs.py; their plans and how they are sized on the GPU:
scripts/reference_plans.py.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch
from PIL import Image
from reference_jobs import render_pages, run_modern
from reference_plans import (
    CLASSIC,
    DESCAN_JOBS,
    DRY,
    GPU,
    JOBS,
    RUNS_AT_ONCE,
    Context,
    hardware,
    retried_in_fp32_eager,
    scaled,
    target,
)

from restorelab import pretrained
from restorelab.cli import main as restorelab_main
from restorelab.data import embedded_photos
from restorelab.data.benchmarks import SHARED
from restorelab.data.embedded import LEAKS_INTO_BENCHMARKS, TRAIN_PHOTOS
from restorelab.io import file_sha256, list_images, read_image, to_uint8
from restorelab.models import count_params
from restorelab.train import read_checkpoint

VALIDATIONS = 10  # per chapter 1-4 run (best.pt is picked on the embedded validation photos)
SCORE_RESERVE_S = 25  # what a modern job keeps for scoring after training
KILL_GRACE_S = 30  # the parent kills what still runs this long after --minutes
HOSTED = Path("runs/hosted")  # publish's weights over PACKAGE_LIMIT: to be hosted, never tracked
PACKAGE_LIMIT = 4_000_000  # weights larger than this stay out of the package (they go to HOSTED)


# ------------------------------------------------------------------ data (chapters 1-4, ESRGAN)
def write_lossless(image: torch.Tensor, path: Path) -> None:
    Image.fromarray(to_uint8(image)).save(path, "WEBP", lossless=True, quality=100)


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> its centre, at most size x size."""
    h, w = image.shape[-2:]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[:, top : top + size, left : left + size]


def make_data(out: Path, crop: int, max_mb: float, pool: Path = SHARED / "TrainPool") -> None:
    """The embedded training photos (whole), then centre crops of ``pool``'s PNGs, taking turns
    between its sources (file-name prefix), until ``max_mb`` megabytes are written."""
    out.mkdir(parents=True, exist_ok=True)
    for name, image in zip(TRAIN_PHOTOS, embedded_photos("train"), strict=True):
        if name not in LEAKS_INTO_BENCHMARKS:
            write_lossless(image, out / f"embedded_{name}.webp")
    sources: dict[str, list[Path]] = {}
    for path in sorted(pool.glob("*.png")):
        sources.setdefault(path.stem.split("_")[0], []).append(path)
    turns = [p for group in zip(*sources.values(), strict=False) for p in group]
    turns += [p for group in sources.values() for p in group if p not in turns]
    for path in turns:
        if sum(f.stat().st_size for f in out.iterdir()) > max_mb * 1e6:
            break
        write_lossless(centre_crop(read_image(path, "rgb"), crop), out / f"{path.stem}.webp")
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"{len(list_images(out))} training images in {out} ({size:.1f} MB)")


# ------------------------------------------------------------------ chapters 1-4 (the CLI)
def train_command(name: str, data: str, steps: int, out: Path, fast: bool = True) -> list[str]:
    """The ``restorelab train`` arguments of reference ``name``: the --fast preset, or with
    ``fast`` False fp32 eager (``--amp off``)."""
    every = max(steps // VALIDATIONS, 1)
    return [*pretrained.REFERENCES[name].train_args, "--data", data, "--val", "embedded",
            "--steps", str(steps), "--val-every", str(every), "--seed", "0",
            *(["--fast"] if fast else ["--amp", "off"]),
            *(["--resume"] if (out / "last.pt").exists() else []), "--out", str(out)]  # fmt: skip


def run_one(name: str, data: str, out: Path, commit: str, steps: int) -> None:
    """Train reference ``name`` for ``steps`` steps into ``out/name``; write its run.json."""
    commands = []

    def attempt(fp32_eager: bool) -> None:
        commands.append(train_command(name, data, steps, out / name, fast=not fp32_eager))
        code = restorelab_main(["train", *commands[-1]])
        if code != 0:
            raise RuntimeError(f"restorelab train exited with status {code}")

    started = time.perf_counter()
    settings = retried_in_fp32_eager(name, out / name, attempt)
    run = {
        "name": name, "command": "restorelab train " + " ".join(commands[-1]),
        "settings": settings, "steps": steps,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "hardware": hardware(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
        "torch": torch.__version__, "commit": commit,
        "date": datetime.date.today().isoformat(),
    }  # fmt: skip
    (out / name / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run), flush=True)


# ------------------------------------------------------------------ all at once
def train_all(args: argparse.Namespace) -> None:
    """Every job of ``args.names`` at once, one process each, stopped by ``args.minutes``."""
    names = args.names or JOBS
    plan = scaled(DRY if args.dry_run else GPU, args.steps_scale)
    if args.dry_run and args.out.resolve().is_relative_to(pretrained.WEIGHTS.resolve()):
        raise SystemExit(f"{args.out}: a dry run never writes into the package's weights")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    record_command(args.out, sys.argv[1:])
    if any(n in DESCAN_JOBS for n in names):
        render_pages(plan, args.out / "pages.pt")
        print(f"pages rendered in {time.time() - started:.0f} s", flush=True)
    end = started + args.minutes * 60
    threads = str(max((os.cpu_count() or 4) // len(names), 1))
    # each job its share of the cores, for its kernels and for torch.compile's workers (by
    # default every process would start a compile worker per core: 12 x 16 on the GPU machine)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "TORCHINDUCTOR_COMPILE_THREADS": threads,
           "PYTHONUNBUFFERED": "1", RUNS_AT_ONCE: str(len(names))}  # fmt: skip
    procs = {}
    for name in names:
        command = [sys.executable, __file__, "run", name, "--data", str(args.data), "--out",
                   str(args.out), "--commit", args.commit, "--until", str(end - SCORE_RESERVE_S),
                   "--steps-scale", str(args.steps_scale)]  # fmt: skip
        if args.dry_run:
            command.append("--dry-run")
        log = (args.out / f"{name}.log").open("w")
        procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    for name, proc in procs.items():
        try:
            code = proc.wait(max(end + KILL_GRACE_S - time.time(), 1))
        except subprocess.TimeoutExpired:
            proc.terminate()  # best.pt and last.pt stay: the run can be resumed or published
            code = f"{proc.wait()} (stopped at the deadline)"
        print(f"{name}: exit {code} after {time.time() - started:.0f} s", flush=True)


def checkout_commit(folder: Path = Path(__file__).parent) -> str:
    """The short hash of the HEAD of the checkout holding ``folder``, with ``+dirty`` when
    tracked files differ from it; ``unknown`` outside a git checkout (a copy of the working
    tree on the GPU machine)."""
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=folder,  # noqa: E731
                                    check=True).stdout.strip()  # fmt: skip
    try:
        head = git("rev-parse", "--short", "HEAD")
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record_command(out: Path, argv: list[str]) -> None:
    """Add the ``train`` command that trains ``out``'s runs to ``out/train.json`` (a resumed
    run keeps the commands before it), for the cards."""
    recorded = out / "train.json"
    commands = json.loads(recorded.read_text())["commands"] if recorded.exists() else []
    commands.append(f"python scripts/train_references.py {shlex.join(argv)}")
    recorded.write_text(json.dumps({"commands": commands}, indent=2) + "\n")


def trained_by(folder: Path) -> str:
    """The ``train`` commands that trained the job of run ``folder`` (those of its parent's
    train.json that name it in ``--names`` or have no ``--names``), in order: a resumed run
    lists each."""
    recorded = folder.parent / "train.json"
    commands = json.loads(recorded.read_text())["commands"] if recorded.exists() else []
    shown = (
        " then ".join(c for c in commands if folder.name in named_jobs(c))
        or "python scripts/train_references.py train"
    )
    return f"{shown} (job {folder.name})"


def named_jobs(command: str) -> list[str]:
    """The jobs a recorded ``train`` command runs: those after its ``--names``, else all."""
    words = shlex.split(command)
    if "--names" not in words:
        return JOBS
    after = words[words.index("--names") + 1 :]
    return list(itertools.takewhile(lambda word: not word.startswith("--"), after))


def run_job(args: argparse.Namespace) -> None:
    plan = scaled(DRY if args.dry_run else GPU, args.steps_scale)
    if args.name in CLASSIC:
        run_one(args.name, args.data, args.out, args.commit, plan.classic_steps)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ctx = Context(plan, args.out / args.name, args.data, args.until, device, args.commit)
    run_modern(args.name, ctx)


# ------------------------------------------------------------------ results
def results(runs: Path) -> dict[str, list[dict]]:
    """Every reference entry of the runs' result.json files, by reference name (an inpainting
    strategy has one per seed; the seed-0 entry holds the weights)."""
    found: dict[str, list[dict]] = {}
    for path in sorted(runs.glob("*/result.json")):
        for key, entry in json.loads(path.read_text())["references"].items():
            name = key.split("@")[0]
            weights = path.parent / "weights" / f"{name}.safetensors"
            found.setdefault(name, []).append({**entry, "folder": str(path.parent),
                                               "weights": str(weights) if "@" not in key else None})  # fmt: skip
    return found


def seed_table(entries: list[dict]) -> dict:
    """An inpainting strategy's scores over its seeds: per seed, mean and standard deviation."""
    by_seed = {str(e["seed"]): e["evaluation"]["psnr"] for e in entries}
    values = list(by_seed.values())
    mean = sum(values) / len(values)
    std = (
        (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        if len(values) > 1
        else None
    )
    return {"psnr_per_seed": by_seed, "psnr_mean": mean, "psnr_std": std}


def summary(runs: Path) -> str:
    """What the runs measured, as Markdown: the descanning order, every target met or missed."""
    found = results(runs)
    lines = [
        "| reference | steps done / planned | steps/s | scores | targets |",
        "|---|---|---|---|---|",
    ]
    for name, entries in sorted(found.items()):
        e = (
            next(x for x in entries if x["weights"])
            if any(x["weights"] for x in entries)
            else entries[0]
        )
        scores = (
            seed_table(entries) if "seed" in e else e["evaluation"].get("model", e["evaluation"])
        )
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float))
        verdicts: dict[str, list[str]] = {}  # a target: one verdict per seed
        for t in (t for x in entries for t in x["targets"]):
            verdict = "met" if t["passed"] else "missed" if t["passed"] is False else "not measured"
            verdicts.setdefault(t["what"], []).append(verdict)
        met = "; ".join(
            f"{what}: {v[0]}"
            if len(v) == 1
            else f"{what}: met in {v.count('met')} of {len(v)} seeds"
            for what, v in verdicts.items()
        )
        lines.append(
            f"| {name} | {e['steps_done']} / {e['steps']} | {e['steps_per_s']} | {shown} | {met} |"
        )
    order = sorted((e["evaluation"]["model"]["y_mae"], name) for name, [e] in
                   ((n, found[n]) for n in DESCAN_JOBS if n in found))  # fmt: skip
    if order:
        scans = found[order[0][1]][0]["evaluation"]["input"]["y_mae"]
        lines.append("\nDescanning, by measured Y-MAE (lower is better; the scans: "
                     f"{scans:.3f}): " + ", ".join(f"{n} {v:.3f}" for v, n in order))  # fmt: skip
    for name in ("esrgan-psnr",):
        if name in found:
            sweep = found[name][0]["sweep"]
            lines.append("\nESRGAN interpolation: " + "; ".join(
                ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in p.items())
                for p in sweep))  # fmt: skip
    return "\n".join(lines)


PART_BYTES = 15_000_000  # a file back from the GPU machine: at most 16 MiB


def pack(runs: Path, target_file: Path, parts: int = 4) -> None:
    """Weights (safetensors: chapters 1-4 fp32, the modern half fp16), logs, run.json and
    result.json of every run, in at most ``parts`` archives of about PART_BYTES each
    (``target_file`` with -1, -2 ... before .tar.gz)."""
    from safetensors.torch import load_file

    for name in pretrained.available():
        folder = runs / name
        if (folder / "best.pt").exists():
            state = read_checkpoint(folder / "best.pt")["model"]
            pretrained.save_weights(state, folder / "best.safetensors", half=False)
    for path in runs.glob("*/weights/*.safetensors"):
        half = path.with_name(path.stem + ".fp16")
        pretrained.save_weights(load_file(str(path)), half, half=True)
    files = [p for p in sorted(runs.rglob("*")) if p.is_file() and (
        p.suffix in (".json", ".log", ".md", ".fp16") or p.name in ("log.csv", "best.safetensors"))
        and p.name != "clusters.json"]  # fmt: skip
    groups: list[list[Path]] = [[]]
    for path in sorted(files, key=lambda p: -p.stat().st_size):
        sizes = [sum(p.stat().st_size for p in g) for g in groups]
        fits = [i for i, size in enumerate(sizes) if size + path.stat().st_size <= PART_BYTES]
        if fits:
            groups[fits[0]].append(path)
        else:
            groups.append([path])
    if len(groups) > parts:
        print(f"warning: {len(groups)} parts of {PART_BYTES / 1e6:.0f} MB needed, {parts} allowed")
    stem = target_file.name.removesuffix(".tar.gz")
    for i, group in enumerate(groups, 1):
        part = target_file.with_name(f"{stem}-{i}.tar.gz")
        with tarfile.open(part, "w:gz") as archive:
            for path in group:
                name = str(path.relative_to(runs))
                archive.add(
                    path,
                    name.removesuffix(".fp16") + (".safetensors" if path.suffix == ".fp16" else ""),
                )
        print(f"packed {part} ({part.stat().st_size / 1e6:.1f} MB, {len(group)} files)")


def save_and_record(name: str, state: dict, target_file: Path, half: bool) -> None:
    """Write the weights and record their sha256 in the model card at once: pretrained.load
    refuses weights whose checksum is not the card's."""
    pretrained.save_weights(state, target_file, half=half)
    path = pretrained.card_path(name)
    card = json.loads(path.read_text()) if path.exists() else {"name": name}
    path.write_text(json.dumps({**card, "sha256": file_sha256(target_file)}, indent=2) + "\n")


def publish_classic(name: str, runs: Path) -> None:
    from safetensors.torch import load_file

    folder = runs / name
    run = json.loads((folder / "run.json").read_text())
    state = load_file(str(folder / "best.safetensors"))
    target_file = pretrained.WEIGHTS / f"{name}.safetensors"
    scores = {}
    for half in (False, True):
        save_and_record(name, state, target_file, half)
        scores[half] = pretrained.evaluate(name)
    gap = max(
        abs(scores[True][bench]["model"][key] - scores[False][bench]["model"][key])
        for bench in scores[False] for key in scores[False][bench]["model"] if "psnr" in key
    )  # fmt: skip
    half = gap <= 0.01
    save_and_record(name, state, target_file, half)
    model = pretrained.load(name)
    bench, metric, _, threshold = pretrained.PAPER_TARGETS[name]
    card = {
        **{k: run[k] for k in ("command", "steps", "wall_seconds", "hardware", "torch",
                               "commit", "date")},
        "name": name,
        "model": pretrained.REFERENCES[name].model,
        "parameters": count_params(model),
        "task": pretrained.REFERENCES[name].task,
        "data": "centre crops (256 px) of the TrainPool PNGs (Urban100, Manga109) + the embedded "
                "training photos without 'camera' (a re-creation of Set12's cameraman scene), "
                "14 MB of lossless WebP; best.pt picked on the embedded validation photos",
        "batch_size": int(run["command"].split("--batch-size ")[1].split()[0]),
        "stored_as": f"{'float16' if half else 'float32'} safetensors "
                     f"(float16 moves PSNR by at most {gap:.4f} dB)",
        "evaluation": scores[half],
        "targets": [target(f"{bench} {metric} above {threshold}",
                           scores[half][bench]["model"][metric], threshold, higher=True)],
        "convention": pretrained.convention(name),
        "sha256": file_sha256(target_file),
    }  # fmt: skip
    pretrained.card_path(name).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({"name": name, "evaluation": card["evaluation"]}))


def publish_modern(name: str, entries: list[dict], weights: Path, hosted: Path) -> None:
    """The card and weights of a modern reference from what its GPU job measured."""
    from safetensors.torch import load_file

    main = next(e for e in entries if e["weights"])
    run = json.loads((Path(main["folder"]) / "run.json").read_text())
    half = True  # packed as fp16 to come back from the GPU machine; fp16_gap: what that moved
    weights.mkdir(parents=True, exist_ok=True)
    tmp = weights / f"{name}.safetensors.tmp"
    pretrained.save_weights(load_file(main["weights"]), tmp, half=half)
    packaged = tmp.stat().st_size <= PACKAGE_LIMIT
    final = (weights if packaged else hosted) / f"{name}.safetensors"
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(tmp, final)
    skip = {"folder", "weights", "fp16_gap", "seed", "evaluation", "targets"}
    card = {
        "name": name, **{k: v for k, v in main.items() if k not in skip},
        **{k: run[k] for k in ("wall_seconds", "hardware", "torch", "commit", "date",
                               "settings")},
        "command": trained_by(Path(main["folder"])),
        "evaluation": seed_table(entries) | {k: main["evaluation"][k] for k in
                                             ("damaged_psnr", "mean_fill_psnr")}
        if "seed" in main else main["evaluation"],
        "targets": [t | {"seed": e["seed"]} if "seed" in e else t for e in entries for t in e["targets"]],
        "stored_as": f"{'float16' if half else 'float32'} safetensors (float16 moves PSNR by at "
                     f"most {main['fp16_gap']:.4f} dB)"
                     + ("" if packaged else f"; {final.stat().st_size / 1e6:.1f} MB, over the "
                        f"package's {PACKAGE_LIMIT / 1e6:.0f} MB: not packaged, to be hosted "
                        "(put it in ~/.cache/restorelab/weights)"),
        "sha256": file_sha256(final),
    }  # fmt: skip
    (weights / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({"name": name, "packaged": packaged, "targets": card["targets"]}))
    if card["model"]["architecture"] == "kbnet":
        publish_basis_maps(name, final, weights)


def publish_basis_maps(name: str, weights_file: Path, folder: Path) -> None:
    """Chapter 5's maps of dominant bases of KBNet reference ``name`` on the chapter's held-out
    scan (QUICK pages), stored in the package: the page shows them where the weights, too
    large for the package, are absent."""
    from restorelab.descanning import descanning_data

    scan = descanning_data().val[0][0]  # what chapter 5 builds with QUICK = True, DATA = None
    maps = pretrained.kba_basis_maps(name, scan, pretrained.load(name, path=weights_file))
    print(
        f"{name}: maps of dominant bases in {pretrained.save_kba_basis_maps(name, scan, maps, folder)}"
    )


def publish(args: argparse.Namespace) -> None:
    found = results(args.runs)
    for name in args.names or [*CLASSIC, *pretrained.modern()]:
        if name in pretrained.REFERENCES:
            publish_classic(name, args.runs)
        elif name in found:
            publish_modern(name, found[name], args.weights, args.hosted)
        else:
            print(f"{name}: no result in {args.runs}, not published")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    data = sub.add_parser("data")
    data.add_argument("--out", type=Path, default=Path("runs/refdata"))
    data.add_argument(
        "--crop", type=int, default=256, help="centre crop side of each TrainPool image"
    )
    data.add_argument(
        "--max-mb", type=float, default=14.0, help="stop adding images past this size"
    )
    for action in ("train", "run"):
        p = sub.add_parser(action)
        if action == "run":
            p.add_argument("name", choices=JOBS)
            p.add_argument(
                "--until",
                type=float,
                default=math.inf,
                help="time.time() at which a modern job stops training",
            )
        else:
            p.add_argument("--names", nargs="*", choices=JOBS)
            p.add_argument(
                "--minutes",
                type=float,
                default=5.0,
                help="every job ends within this (the last killed 30 s later)",
            )
        p.add_argument("--data", default="runs/refdata")
        p.add_argument("--out", type=Path, default=Path("runs/references"))
        p.add_argument(
            "--commit", default=checkout_commit(), help="the code's commit, for the cards"
        )
        p.add_argument(
            "--steps-scale",
            type=float,
            default=1.0,
            help="multiply every planned step count (a resumed, longer rerun)",
        )
        p.add_argument(
            "--dry-run",
            action="store_true",
            help="tiny models, pages and steps: every code path in a few CPU minutes",
        )
    show = sub.add_parser("summary", help="what the runs measured, as Markdown")
    show.add_argument("--runs", type=Path, default=Path("runs/references"))
    archive = sub.add_parser("pack", help="weights, logs, run.json and result.json in one .tar.gz")
    archive.add_argument("--runs", type=Path, default=Path("runs/references"))
    archive.add_argument("--to", type=Path, default=Path("references.tar.gz"))
    archive.add_argument("--parts", type=int, default=4, help="at most this many archives")
    pub = sub.add_parser("publish")
    pub.add_argument("--runs", type=Path, default=Path("runs/references"))
    pub.add_argument("--names", nargs="*", choices=[*pretrained.available(), *pretrained.modern()])
    pub.add_argument(
        "--weights",
        type=Path,
        default=pretrained.WEIGHTS,
        help="where the modern references' cards and packaged weights go",
    )
    pub.add_argument(
        "--hosted",
        type=Path,
        default=HOSTED,
        help="where weights too large for the package go (to be hosted, never tracked)",
    )
    maps = sub.add_parser("basis-maps", help="chapter 5's maps of a published KBNet reference")
    maps.add_argument("name", choices=pretrained.modern())
    maps.add_argument("--weights-file", type=Path, help=f"default: {HOSTED}/NAME.safetensors")
    args = parser.parse_args()
    if args.action == "basis-maps":
        file = args.weights_file or HOSTED / f"{args.name}.safetensors"
        publish_basis_maps(args.name, file, pretrained.WEIGHTS)
    elif args.action == "data":
        make_data(args.out, args.crop, args.max_mb)
    elif args.action == "train":
        train_all(args)
    elif args.action == "run":
        run_job(args)
    elif args.action == "summary":
        print(summary(args.runs))
    elif args.action == "pack":
        pack(args.runs, args.to, args.parts)
    else:
        publish(args)


if __name__ == "__main__":
    main()
