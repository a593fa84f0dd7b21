"""Train, score and publish the reference checkpoints of restorelab.pretrained (one script reruns them all).

Three steps, each a subcommand:

    python scripts/train_references.py data --out refdata
        the training images: ../shared/datasets/TrainPool's PNGs (Urban100, Manga109) and the
        embedded training photos except "camera" (it re-creates Set12's cameraman scene), as lossless WebP
    python scripts/train_references.py train --data refdata --out runs/references --steps 6000
        trains every reference at once (one process each, one GPU shared) for --steps steps; each
        run is an ordinary `restorelab train` whose exact command goes into the card (a card's
        steps rerun its recipe); --deadline stops every run in time
    python scripts/train_references.py pack --runs runs/references --to references.tar.gz
        each run's best weights (safetensors), log.csv and run.json in one archive
    python scripts/train_references.py publish --runs runs/references
        scores each run's best weights on its benchmarks, stores them in restorelab/weights as
        safetensors (fp16 where that moves no PSNR by more than 0.01 dB) with the model card
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch
from PIL import Image

from restorelab import pretrained
from restorelab.cli import main as restorelab_main
from restorelab.data import embedded_photos
from restorelab.data.benchmarks import SHARED
from restorelab.data.embedded import LEAKS_INTO_BENCHMARKS, TRAIN_PHOTOS
from restorelab.io import file_sha256, list_images, read_image, to_uint8
from restorelab.models import count_params

VALIDATIONS = 10  # validations per run (best.pt is picked on the embedded validation photos)


def write_lossless(image: torch.Tensor, path: Path) -> None:
    Image.fromarray(to_uint8(image)).save(path, "WEBP", lossless=True, quality=100)


def make_data(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((SHARED / "TrainPool").glob("*.png")):
        write_lossless(read_image(path, "rgb"), out / f"{path.stem}.webp")
    for name, image in zip(TRAIN_PHOTOS, embedded_photos("train"), strict=True):
        if name not in LEAKS_INTO_BENCHMARKS:
            write_lossless(image, out / f"embedded_{name}.webp")
    print(f"{len(list_images(out))} training images in {out}")


def train_command(name: str, data: str, steps: int, out: Path) -> list[str]:
    every = max(steps // VALIDATIONS, 1)
    return [*pretrained.REFERENCES[name].train_args, "--data", data, "--val", "embedded",
            "--steps", str(steps), "--val-every", str(every), "--seed", "0",
            "--out", str(out)]  # fmt: skip


def run_one(name: str, data: str, out: Path, commit: str, steps: int) -> None:
    """Train reference ``name`` for ``steps`` steps into ``out/name``; write its run.json."""
    command = train_command(name, data, steps, out / name)
    started = time.perf_counter()
    code = restorelab_main(["train", *command])
    wall = time.perf_counter() - started
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    run = {
        "name": name, "exit_code": code, "command": "restorelab train " + " ".join(command),
        "steps": steps, "wall_seconds": round(wall, 1),
        "hardware": f"{device}, shared by {len(pretrained.REFERENCES)} runs at once",
        "torch": torch.__version__, "commit": commit,
        "date": datetime.date.today().isoformat(),
    }  # fmt: skip
    (out / name / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps(run))


def train_all(args: argparse.Namespace) -> None:
    names = args.names or pretrained.available()
    args.out.mkdir(parents=True, exist_ok=True)
    threads = str(max((os.cpu_count() or 4) // len(names), 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "run", name, "--data", str(args.data), "--out",
             str(args.out), "--commit", args.commit, "--steps", str(args.steps)],
            stdout=(args.out / f"{name}.log").open("w"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        for name in names
    }
    deadline = time.monotonic() + args.deadline * 60 if args.deadline else None
    for name, proc in procs.items():
        try:
            code = proc.wait(None if deadline is None else max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            proc.terminate()  # best.pt and last.pt stay: the run can be resumed or published
            code = f"{proc.wait()} (stopped at the deadline)"
        print(f"{name}: exit {code}", flush=True)


def pack(runs: Path, target: Path) -> None:
    """Best weights (safetensors, fp32), log.csv and run.json of each run in one archive."""
    from restorelab.train import read_checkpoint

    with tarfile.open(target, "w:gz") as archive:
        for name in pretrained.available():
            folder = runs / name
            if (folder / "best.pt").exists():
                state = read_checkpoint(folder / "best.pt")["model"]
                pretrained.save_weights(state, folder / "best.safetensors", half=False)
            for file in ("best.safetensors", "log.csv", "run.json"):
                if (folder / file).exists():
                    archive.add(folder / file, f"{name}/{file}")
            if (runs / f"{name}.log").exists():
                archive.add(runs / f"{name}.log", f"{name}/train.log")
    print(f"packed {target} ({target.stat().st_size / 1e6:.1f} MB)")


def save_and_record(name: str, state: dict, target: Path, half: bool) -> None:
    """Write the weights and record their sha256 in the model card at once: pretrained.load
    refuses weights whose checksum is not the card's."""
    pretrained.save_weights(state, target, half=half)
    path = pretrained.card_path(name)
    card = json.loads(path.read_text()) if path.exists() else {"name": name}
    path.write_text(json.dumps({**card, "sha256": file_sha256(target)}, indent=2) + "\n")


def publish(args: argparse.Namespace) -> None:
    from safetensors.torch import load_file

    for name in args.names or pretrained.available():
        folder = args.runs / name
        run = json.loads((folder / "run.json").read_text())
        state = load_file(str(folder / "best.safetensors"))
        target = pretrained.WEIGHTS / f"{name}.safetensors"
        scores = {}
        for half in (False, True):
            save_and_record(name, state, target, half)
            scores[half] = pretrained.evaluate(name)
        gap = max(
            abs(scores[True][bench]["model"][key] - scores[False][bench]["model"][key])
            for bench in scores[False] for key in scores[False][bench]["model"] if "psnr" in key
        )  # fmt: skip
        half = gap <= 0.01
        save_and_record(name, state, target, half)
        model = pretrained.load(name)
        card = {
            **{k: run[k] for k in ("command", "steps", "wall_seconds", "hardware", "torch",
                                   "commit", "date")},
            "name": name,
            "model": pretrained.REFERENCES[name].model,
            "parameters": count_params(model),
            "task": pretrained.REFERENCES[name].task,
            "data": "TrainPool PNGs (40 Urban100, 9 Manga109) + the embedded training photos "
                    "without 'camera' (a re-creation of Set12's cameraman scene); best.pt "
                    "picked on the embedded validation photos",
            "batch_size": int(run["command"].split("--batch-size ")[1].split()[0]),
            "stored_as": f"{'float16' if half else 'float32'} safetensors "
                         f"(float16 moves PSNR by at most {gap:.4f} dB)",
            "evaluation": scores[half],
            "convention": pretrained.convention(name),
            "sha256": file_sha256(target),
        }  # fmt: skip
        pretrained.card_path(name).write_text(json.dumps(card, indent=2) + "\n")
        print(json.dumps({"name": name, "evaluation": card["evaluation"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    data = sub.add_parser("data")
    data.add_argument("--out", type=Path, default=Path("refdata"))
    for action in ("train", "run"):
        p = sub.add_parser(action)
        if action == "run":
            p.add_argument("name", choices=pretrained.available())
        else:
            p.add_argument("--names", nargs="*", choices=pretrained.available())
            p.add_argument("--deadline", type=float, default=0,
                           help="stop every run after this many minutes (0: none)")
        p.add_argument("--data", default="refdata")
        p.add_argument("--out", type=Path, default=Path("runs/references"))
        p.add_argument("--commit", default="unknown")
        p.add_argument("--steps", type=int, required=True, help="training steps of each run")
    archive = sub.add_parser("pack", help="best weights, logs and run.json of each run in one .tar.gz")
    archive.add_argument("--runs", type=Path, default=Path("runs/references"))
    archive.add_argument("--to", type=Path, default=Path("references.tar.gz"))
    pub = sub.add_parser("publish")
    pub.add_argument("--runs", type=Path, default=Path("runs/references"))
    pub.add_argument("--names", nargs="*", choices=pretrained.available())
    args = parser.parse_args()
    if args.action == "data":
        make_data(args.out)
    elif args.action == "train":
        train_all(args)
    elif args.action == "pack":
        pack(args.runs, args.to)
    elif args.action == "run":
        run_one(args.name, args.data, args.out, args.commit, args.steps)
    else:
        publish(args)


if __name__ == "__main__":
    main()
