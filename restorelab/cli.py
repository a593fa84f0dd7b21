"""The ``restorelab`` command line: demo, train, eval, labs.

Taught in chapter 1. Every subcommand calls the same functions the notebooks call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from restorelab import __version__


def _demo(args: argparse.Namespace) -> int:
    from restorelab.demo import run_demo

    metrics = run_demo(args.out, scale=args.scale, steps=args.steps, seed=args.seed)
    return 0 if metrics["model_psnr_y"] > metrics["bicubic_psnr_y"] else 1


# what each task's input is called in the tables (the "do nothing" baseline)
BASELINES = {"sr": "bicubic", "jpeg": "JPEG input", "denoise": "noisy input"}


def _task(args: argparse.Namespace):
    from restorelab.experiment import make_task

    settings = {"channels": args.channels} if args.channels else {}
    if args.task == "sr":
        settings.update(scale=args.scale, pre_upsample=args.pre_upsample)
    elif args.task == "jpeg":
        settings.update(quality=args.quality)
    else:
        settings.update(sigma=args.sigma, sigma_range=args.sigma_range and tuple(args.sigma_range))
    return make_task(args.task, **settings)


def _train(args: argparse.Namespace) -> int:
    from restorelab import distributed
    from restorelab.data import embedded_photos, load_folder, training_images
    from restorelab.experiment import make_trainer
    from restorelab.train import TrainConfig

    task = _task(args)
    val = (
        embedded_photos("val") if args.val == "embedded" else load_folder(args.val, as_uint8=False)
    )
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        num_workers=args.workers,
        device=args.device,
    )
    try:  # under torchrun the Trainer joins the process group; leave it on every exit
        trainer = make_trainer(
            args.model, task, training_images(args.data), val, config, args.out,
            patch_size=args.patch_size, loss=args.loss, preset=args.preset,
        )  # fmt: skip
        trainer.fit(resume=args.resume, overwrite=args.overwrite, require_run=args.resume)
        if distributed.is_main():
            print(json.dumps({"step": trainer.step, "best": trainer.best, "out": str(args.out)}))
    finally:
        distributed.shutdown()
    return 0


def _eval(args: argparse.Namespace) -> int:
    from restorelab.data import benchmark_dir, benchmark_images, embedded_photos
    from restorelab.experiment import load_checkpoint, mean_scores, results_table, task_spec
    from restorelab.io import list_images, read_image

    model, task = load_checkpoint(args.checkpoint, args.device)
    spec = task_spec(task)
    if args.benchmark:
        hr = [image for _, image in benchmark_images(args.benchmark, download=args.download)]
        label = args.benchmark
    elif args.folder:
        hr = [read_image(path, "any") for path in list_images(args.folder)]
        label = args.folder
    else:
        hr, label = embedded_photos("val"), "embedded validation photos"
    lr = None
    if args.benchmark == "Set5" and spec["name"] == "sr" and not args.degrade_here:
        try:
            lr_dir = benchmark_dir(f"Set5/LR_bicubic/X{task.scale}", download=args.download)
            lr = [read_image(path, "rgb") for path in list_images(lr_dir)]
        except FileNotFoundError:
            print("Set5 LR_bicubic not found: degrading the HR images here", file=sys.stderr)
    rows = {
        BASELINES[spec["name"]]: mean_scores(task.evaluate(None, hr, lr)),
        Path(args.checkpoint).name: mean_scores(task.evaluate(model, hr, lr, tile=args.tile)),
    }
    if spec["name"] == "sr":
        source = "MATLAB LR files" if lr is not None else "LR made by restorelab's MATLAB bicubic"
        title = f"x{task.scale} on {label} ({len(hr)} images; {source}; Y channel, {task.scale}px shaved)"
    else:
        settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        title = f"{spec['name']} ({settings}) on {label} ({len(hr)} images)"
    print(results_table(rows, title))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def _labs(args: argparse.Namespace) -> int:
    from restorelab import labs

    if args.action == "build":
        for path in labs.build_all(args.solutions, args.labs):
            print(f"wrote {path}")
        return 0
    if args.action == "refresh":
        for notebook in args.notebooks:
            print("\n".join(labs.refresh_check_outputs(notebook)))
        return 0
    problems = labs.check_all(args.solutions, args.labs)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"labs are up to date with {args.solutions}")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    from restorelab.models import available

    parser = argparse.ArgumentParser(prog="restorelab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"restorelab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train SRCNN x2 on embedded photos and compare with bicubic")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    demo.add_argument("--steps", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    train = sub.add_parser("train", help="train a model on a task (resumable)")
    train.add_argument("--model", default="srcnn", choices=available())
    train.add_argument("--preset", default="paper")
    train.add_argument("--task", default="sr", choices=tuple(BASELINES))
    train.add_argument("--scale", type=int, default=2, help="sr: the upscaling factor")
    train.add_argument("--quality", type=int, default=10, help="jpeg: the JPEG quality, 1-100")
    train.add_argument("--sigma", type=float, default=25, help="denoise: noise level (0-255)")
    train.add_argument("--sigma-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                       help="denoise: train blind over this range of noise levels")  # fmt: skip
    train.add_argument("--channels", choices=("y", "grey", "rgb"),
                       help="default: y for sr and jpeg, grey for denoise")  # fmt: skip
    train.add_argument("--no-pre-upsample", dest="pre_upsample", action="store_false",
                       help="the model upsamples itself (SRResNet and later)")  # fmt: skip
    train.add_argument("--data", default="embedded",
                       help="'embedded', a set of restorelab.data.BENCHMARKS (e.g. Train400) or a folder")  # fmt: skip
    train.add_argument("--val", default="embedded", help="'embedded' or a folder of HR images")
    train.add_argument("--steps", type=int, default=5000)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--patch-size", type=int, default=48)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--loss", default="l2", choices=("l1", "l2"))
    train.add_argument("--val-every", type=int, default=500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    train.add_argument("--channels-last", action="store_true")
    train.add_argument("--compile", action="store_true")
    train.add_argument("--workers", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--out", default="runs/train", help="checkpoints and logs go here")
    train.add_argument("--checkpoint-every", type=int, default=0,
                       help="also write OUT/last.pt every N steps (it is always written before "
                       "each validation)")  # fmt: skip
    train.add_argument("--resume", action="store_true", help="continue the run in OUT")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run in OUT (checkpoints, logs) and start again")  # fmt: skip
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint: PSNR/SSIM table vs its input")
    evaluate.add_argument("checkpoint", help="a best.pt / last.pt written by restorelab train")
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--benchmark", help="Set5, Set14, ... (see restorelab.data.BENCHMARKS)")
    source.add_argument("--folder", help="a folder of HR images")
    evaluate.add_argument("--download", action="store_true", help="download a missing benchmark")
    evaluate.add_argument("--degrade-here", action="store_true",
                          help="make Set5's LR images here instead of using the MATLAB files")  # fmt: skip
    evaluate.add_argument("--tile", type=int, default=0, help="tile size for large images")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--json", help="also write the table as JSON here")
    evaluate.set_defaults(func=_eval)

    labs = sub.add_parser(
        "labs",
        help="generate student labs from solutions/ (build), check them (check), or store the "
        "outputs nbval compares after running notebooks in QUICK mode (refresh NOTEBOOK...)",
    )
    labs.add_argument("action", choices=("build", "check", "refresh"))
    labs.add_argument("notebooks", nargs="*", help="refresh: the notebooks to run")
    labs.add_argument("--solutions", default="solutions")
    labs.add_argument("--labs", default="labs")
    labs.set_defaults(func=_labs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, OSError) as error:
        print(f"restorelab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
