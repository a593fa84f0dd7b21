"""The ``restorelab`` command line: demo, train, eval, labs, competition, gui.

Taught in chapter 1. Every subcommand calls the same functions the notebooks call. A bad input
(a missing file, an unreadable image, a number out of range, weights that do not fit) ends with
one line on stderr naming the file or option and the problem, and a non-zero exit status;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from restorelab import __version__

# errors that are the user's input, not a bug: exit status 2, like argparse's own
USER_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError)
TILE_OVERLAP = 16  # pixels shared by neighbouring tiles (restorelab.infer.predict's default)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump): ``prog: error: message``."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def number(
    kind: type, low: float | None = None, high: float | None = None, above: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: ``kind`` (int or float), finite, >= ``low`` (> when ``above``), <= ``high``."""
    noun = "an integer" if kind is int else "a number"
    rule = noun
    if low is not None and high is not None:
        rule = f"{noun} from {low:g} to {high:g}"
    elif low is not None:
        rule = f"{noun} {'>' if above else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        too_low = low is not None and (value <= low if above else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text}")
        return value

    return parse


def tile_size(text: str) -> int:
    """An argparse ``type`` for ``--tile``: 0 (whole images) or a tile
    :func:`restorelab.infer.check_tile` accepts with the overlap ``TILE_OVERLAP``."""
    from restorelab.infer import check_tile, tile_rule

    value = number(int, 0)(text)
    try:
        check_tile(value, TILE_OVERLAP)
    except ValueError:
        rule = tile_rule(TILE_OVERLAP)
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text}") from None
    return value


def folder_name(text: str) -> str:
    """An argparse ``type`` for an output folder: a non-empty name (``--out ""`` would write into
    the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder name, got {text!r}")
    return text


def device_name(text: str) -> str:
    """An argparse ``type`` for ``--device``: auto, cpu, cuda[:i] or mps, and present here."""
    import torch

    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: this machine has no CUDA GPU (use cpu or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"{text}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps and mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here (use cpu or auto)")
    return text


def _demo(args: argparse.Namespace) -> int:
    from restorelab.demo import run_demo

    metrics = run_demo(args.out, scale=args.scale, steps=args.steps, seed=args.seed)
    model, bicubic = metrics["model_psnr_y"], metrics["bicubic_psnr_y"]
    if model > bicubic:
        return 0
    print(f"restorelab demo: SRCNN ({model:.2f} dB) does not beat bicubic ({bicubic:.2f} dB, "
          f"Y-PSNR on the held-out photos) after {args.steps} step(s): train longer (the default "
          "--steps 1000 does, in about a minute on a CPU)", file=sys.stderr)  # fmt: skip
    return 1


# what each task's input is called in the tables (the "do nothing" baseline)
BASELINES = {"sr": "bicubic", "jpeg": "JPEG input", "denoise": "noisy input"}
# the task options of train and eval, and their defaults
TASK_DEFAULTS = {
    "scale": 2,
    "quality": 10,
    "sigma": 25.0,
    "sigma_range": None,
    "channels": None,
    "pre_upsample": True,
}


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


def _describe(spec: dict) -> str:
    """A task spec (see experiment.task_spec) in words, e.g. "sr (scale=2, channels=y, ...)"."""
    settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']} ({settings})"


def _train_images(args: argparse.Namespace) -> list:
    """``--data`` read for the task: grey, RGB or mixed folders; ``--alpha`` for RGBA files."""
    from restorelab.data import training_images

    purpose = f"the --patch-size {args.patch_size} training patch"
    return training_images(args.data, "any", args.alpha, args.patch_size, purpose)


def _val_images(args: argparse.Namespace, task) -> list:
    """``--val``: the embedded photos or a folder, each image large enough to be scored."""
    from restorelab.data import embedded_photos, load_folder

    if args.val == "embedded":
        return embedded_photos("val")
    purpose = f"{task.min_size}x{task.min_size}, the smallest image {args.task} with these settings can score"
    return load_folder(args.val, "any", False, args.alpha, task.min_size, purpose)


def _check_model(model, task, args: argparse.Namespace) -> None:
    """Refuse a model whose own upsampling does not match the task's (one line, no traceback)."""
    expected = task.scale if args.task == "sr" and not task.pre_upsample else 1
    upscale = getattr(model, "upscale", 1)
    if upscale != expected:
        hint = (
            f"--scale {upscale} --no-pre-upsample"
            if upscale > 1
            else "a model that upsamples (e.g. msrresnet) or leave out --no-pre-upsample"
        )
        raise ValueError(
            f"--model {args.model} --preset {args.preset} outputs x{upscale} its input, the task "
            f"needs x{expected}; use {hint}"
        )


def _train(args: argparse.Namespace) -> int:
    from restorelab import distributed
    from restorelab.device import pick_device
    from restorelab.experiment import make_trainer
    from restorelab.train import TrainConfig, fast_settings

    task = _task(args)
    val = _val_images(args, task)
    fast = fast_settings(args.model, pick_device(args.device)) if args.fast else {}
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        grad_clip=args.grad_clip,
        seed=args.seed,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        num_workers=args.workers,
        device=args.device,
    )
    for name, value in fast.items():  # the preset's choices over the defaults
        setattr(config, name, value)
    try:  # under torchrun the Trainer joins the process group; leave it on every exit
        trainer = make_trainer(
            args.model, task, _train_images(args), val, config, args.out,
            patch_size=args.patch_size, loss=args.loss, preset=args.preset,
        )  # fmt: skip
        _check_model(trainer.model, task, args)
        trainer.fit(resume=args.resume, overwrite=args.overwrite, require_run=args.resume)
        if distributed.is_main():
            best = trainer.best if math.isfinite(trainer.best) else None  # None: no score
            print(json.dumps({"step": trainer.step, "best": best, "out": str(args.out)}))
    finally:
        distributed.shutdown()
    return 0


def _eval(args: argparse.Namespace) -> int:
    from restorelab import pretrained
    from restorelab.data import benchmark_images, check_size, embedded_photos, matlab_lr_images
    from restorelab.experiment import load_checkpoint, mean_scores, results_table, task_spec
    from restorelab.io import list_images, read_image

    if args.checkpoint in pretrained.REFERENCES and not Path(args.checkpoint).exists():
        model = pretrained.load(args.checkpoint, args.device)
        task = pretrained.task(args.checkpoint)
    elif args.checkpoint:
        model, task = load_checkpoint(args.checkpoint, args.device)  # errors name the file
    else:  # score the classical baseline only
        model, task = None, _task(argparse.Namespace(**{**TASK_DEFAULTS, **vars(args)}))
    spec = task_spec(task)
    if args.benchmark:
        named = benchmark_images(args.benchmark, download=args.download, alpha=args.alpha)
        named = [(f"{args.benchmark}/{stem}", image) for stem, image in named]
        label = args.benchmark
    elif args.folder:
        named = [(str(p), read_image(p, "any", args.alpha)) for p in list_images(args.folder)]
        label = args.folder
    else:
        named = [(f"embedded photo {i}", im) for i, im in enumerate(embedded_photos("val"))]
        label = "embedded validation photos"
    for name, image in named:
        size = f"{task.min_size}x{task.min_size}, the smallest image {_describe(spec)} can score"
        check_size(image, name, task.min_size, size)
    hr = [image for _, image in named]
    lr = None
    if args.benchmark and spec["name"] == "sr" and not args.degrade_here:
        try:
            lr = matlab_lr_images(args.benchmark, task.scale, download=args.download)
        except FileNotFoundError:
            print("Set5 LR_bicubic not found: degrading the HR images here", file=sys.stderr)
    rows = {BASELINES[spec["name"]]: mean_scores(task.evaluate(None, hr, lr))}
    if model is not None:
        scores = task.evaluate(model, hr, lr, tile=args.tile, self_ensemble=args.self_ensemble)
        rows[Path(args.checkpoint).name] = mean_scores(scores)
    if spec["name"] == "sr":
        source = "MATLAB LR files" if lr is not None else "LR made by restorelab's MATLAB bicubic"
        title = f"x{task.scale} on {label} ({len(hr)} images; {source}; Y channel, {task.scale}px shaved)"
    else:
        title = f"{_describe(spec)} on {label} ({len(hr)} images)"
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


def _competition(args: argparse.Namespace) -> int:
    from restorelab import competition

    if args.action == "make":
        pairs, source = _competition_pairs(args)
        manifest = competition.make(pairs, args.out, args.test, args.seed, source)
        print(f"wrote {Path(args.out) / 'public'} ({len(manifest['split']) - len(manifest['test'])} "
              f"train pairs, {len(manifest['test'])} test scans) and {Path(args.out) / 'private'} "
              f"(split seed {args.seed}; keep it private)")  # fmt: skip
        return 0
    if args.action == "score":
        report = competition.score(args.submission, args.private)
        print(competition.describe(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        return 0 if report["status"] == "ok" else 1
    if args.action == "grade":
        fields = dataclasses.fields(competition.Limits)
        limits = competition.Limits(**{field.name: getattr(args, field.name) for field in fields})
        reports = competition.grade_class(args.submissions, args.public, args.private,
                                          args.results, limits, args.isolation, args.jobs,
                                          args.team or None)  # fmt: skip
        for report in reports:
            print(f"{report['team']}: {report['status']} {report['reason']}".rstrip())
    for path in competition.write_leaderboard(args.results).values():
        print(f"wrote {path}")
    return 0


def _gui(args: argparse.Namespace) -> int:
    from restorelab import pretrained
    from restorelab.device import pick_device

    for checkpoint in args.checkpoint:
        if checkpoint not in pretrained.REFERENCES and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"{checkpoint}: no such checkpoint file")
    try:
        from restorelab.gui.app import launch
    except ImportError as error:
        print(f"restorelab gui: error: {error}", file=sys.stderr)
        return 2
    launch(args.host, args.port, args.checkpoint, str(pick_device(args.device)), args.share)
    return 0


def _competition_pairs(args: argparse.Namespace):
    """The pairs ``competition make`` splits: synthetic pages, or a folder's scan/clean pairs."""
    import secrets

    from restorelab.competition import synthetic_pairs
    from restorelab.data import PairedFolder

    if args.source == "synthetic":
        seed = secrets.randbelow(2**31) if args.page_seed is None else args.page_seed
        return synthetic_pairs(args.pages, args.size, seed), f"SyntheticScans(seed={seed})"
    root = Path(args.source)
    if not (root / "scan").is_dir() and (root / "train" / "scan").is_dir():
        root = root / "train"  # the 2023 course layout: only train/ has clean pages
    return PairedFolder(root), str(root.resolve())


def _add_competition(sub, debug: argparse.ArgumentParser) -> None:
    from restorelab.competition.sandbox import Limits

    count, positive = number(int, 0), number(int, 1)
    competition = sub.add_parser("competition", parents=[debug],
                                 help="the descanning competition: make, score, grade, "
                                 "leaderboard (see the course appendix)")  # fmt: skip
    actions = competition.add_subparsers(dest="action", required=True)
    make = actions.add_parser("make", parents=[debug],
                              help="write OUT/public and OUT/private from paired images")  # fmt: skip
    make.add_argument("out", type=folder_name,
                      help="the competition folder (public/ and private/ go in it)")  # fmt: skip
    make.add_argument("--source", default="synthetic",
                      help="'synthetic' (SyntheticScans pages) or a folder with scan/ and clean/ "
                      "(or the 2023 layout train/scan, train/clean)")  # fmt: skip
    make.add_argument("--pages", type=positive, default=60, help="synthetic: how many pages")
    make.add_argument("--size", type=number(int, 32), default=512, help="synthetic: page size")
    make.add_argument("--page-seed", type=count, help="synthetic: page seed (default: random, "
                      "recorded privately)")  # fmt: skip
    make.add_argument("--test", type=positive, default=10, help="how many pairs to hold out")
    make.add_argument("--seed", type=count, default=0, help="the seed of the test split")
    score = actions.add_parser("score", parents=[debug],
                               help="score a folder of restored images or a 2023 CSV")  # fmt: skip
    score.add_argument("submission", help="a folder of restored images or a .csv file")
    score.add_argument("--private", required=True, help="the private folder of make")
    score.add_argument("--json", help="also write the report as JSON here")
    grade = actions.add_parser("grade", parents=[debug],
                               help="run each team's notebook in the sandbox, score it, and "
                               "rewrite the leaderboard")  # fmt: skip
    grade.add_argument("submissions", help="a folder with one folder per team")
    grade.add_argument("--public", required=True)
    grade.add_argument("--private", required=True)
    grade.add_argument("--results", required=True, help="reports, logs and leaderboard go here")
    grade.add_argument("--team", action="append", help="grade only this team (repeatable)")
    grade.add_argument("--jobs", type=positive, default=1, help="teams graded at once")
    grade.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    for field in dataclasses.fields(Limits):
        option, default = field.name.replace("_", "-"), field.default
        grade.add_argument(f"--{option}", type=number(field.type, 1), default=default,
                           help=f"sandbox limit per team (default {default})")  # fmt: skip
    board = actions.add_parser("leaderboard", parents=[debug],
                               help="rewrite leaderboard.csv/.md/.html from RESULTS/teams")  # fmt: skip
    board.add_argument("results")
    competition.set_defaults(func=_competition)


def _add_task_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The task settings of train (with defaults) and eval (without a checkpoint only)."""

    def default(name: str):
        return TASK_DEFAULTS[name] if defaults else argparse.SUPPRESS

    parser.add_argument("--scale", type=number(int, 2, 8), default=default("scale"),
                        help="sr: the upscaling factor, 2-8 (default 2)")  # fmt: skip
    parser.add_argument("--quality", type=number(int, 1, 100), default=default("quality"),
                        help="jpeg: the JPEG quality, 1-100 (default 10)")  # fmt: skip
    parser.add_argument("--sigma", type=number(float, 0), default=default("sigma"),
                        help="denoise: noise level on the 0-255 scale (default 25)")  # fmt: skip
    parser.add_argument("--sigma-range", type=number(float, 0), nargs=2, metavar=("LOW", "HIGH"),
                        default=default("sigma_range"),
                        help="denoise: train blind over this range of noise levels")  # fmt: skip
    parser.add_argument("--channels", choices=("y", "grey", "rgb"), default=default("channels"),
                        help="default: y for sr and jpeg, grey for denoise")  # fmt: skip
    parser.add_argument("--no-pre-upsample", dest="pre_upsample", action="store_false",
                        default=default("pre_upsample"),
                        help="sr: the model upsamples itself (SRResNet and later)")  # fmt: skip


def _add_alpha(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha", default="error", choices=("error", "drop", "white"),
                        help="what to do with RGBA / LA images: refuse them (default), drop the "
                        "alpha channel, or composite them over white")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from restorelab.models import available

    parser = Parser(prog="restorelab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"restorelab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    debug = Parser(add_help=False)  # --debug also after the subcommand
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of errors")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    count, positive = number(int, 0), number(int, 1)

    demo = sub.add_parser("demo", parents=[debug],
                          help="train SRCNN x2 on embedded photos and compare with bicubic")  # fmt: skip
    demo.add_argument("--out", type=folder_name, default="runs/demo",
                      help="output folder (default: runs/demo)")  # fmt: skip
    demo.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    demo.add_argument("--steps", type=positive, default=1000)
    demo.add_argument("--seed", type=count, default=0)
    demo.set_defaults(func=_demo)

    train = sub.add_parser("train", parents=[debug], help="train a model on a task (resumable)")
    train.add_argument("--model", default="srcnn", choices=available())
    train.add_argument("--preset", default="paper",
                       help="a configuration of the model: paper (default), small (the chapters' "
                       "QUICK dncnn and msrresnet), ... see restorelab.models.presets")  # fmt: skip
    train.add_argument("--task", default="sr", choices=tuple(BASELINES))
    _add_task_options(train, defaults=True)
    train.add_argument("--data", default="embedded",
                       help="'embedded', a set of restorelab.data.BENCHMARKS (e.g. Train400) or a "
                       "folder of grey and/or RGB images")  # fmt: skip
    train.add_argument("--val", default="embedded", help="'embedded' or a folder of HR images")
    _add_alpha(train)
    train.add_argument("--steps", type=positive, default=5000)
    train.add_argument("--batch-size", type=positive, default=16)
    train.add_argument("--patch-size", type=positive, default=48)
    train.add_argument("--lr", type=number(float, 0, above=True), default=1e-3)
    train.add_argument("--loss", default="l2", choices=("l1", "l2", "charbonnier"))
    train.add_argument("--grad-clip", type=number(float, 0), default=0.0,
                       help="clip the gradient norm to this (0: off; e.g. 1 when the loss "
                       "diverges)")  # fmt: skip
    train.add_argument("--val-every", type=count, default=500, help="0: validate at the end only")
    train.add_argument("--seed", type=count, default=0)
    train.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    train.add_argument("--channels-last", action="store_true")
    train.add_argument("--compile", action="store_true")
    train.add_argument("--fast", action="store_true",
                       help="the fast preset (device sampler; on CUDA also bf16, torch.compile, "
                            "cuDNN autotuning; see restorelab.train.fast_settings)")
    train.add_argument("--workers", type=count, default=0)
    train.add_argument("--device", type=device_name, default="auto")
    train.add_argument("--out", type=folder_name, default="runs/train",
                       help="checkpoints and logs go here")  # fmt: skip
    train.add_argument("--checkpoint-every", type=count, default=0,
                       help="also write OUT/last.pt every N steps (it is always written before "
                       "each validation)")  # fmt: skip
    train.add_argument("--resume", action="store_true", help="continue the run in OUT")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run in OUT (checkpoints, logs) and start again")  # fmt: skip
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("eval", parents=[debug],
                              help="PSNR/SSIM table of a checkpoint vs its input, or of the input "
                              "alone (the classical baseline) with --task")  # fmt: skip
    evaluate.add_argument("checkpoint", nargs="?",
                          help="a best.pt / last.pt written by restorelab train, or the name of a "
                          "reference checkpoint (restorelab.pretrained: srcnn-x2, dncnn-s25, ...); "
                          "leave it out to score the baseline of --task (bicubic, JPEG input, "
                          "noisy input)")  # fmt: skip
    evaluate.add_argument("--task", choices=tuple(BASELINES),
                          help="without a checkpoint: the task whose baseline to score")  # fmt: skip
    _add_task_options(evaluate, defaults=False)
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--benchmark", help="Set5, Set14, ... (restorelab.data.BENCHMARKS) or "
                        "any folder name under $RESTORELAB_DATA")  # fmt: skip
    source.add_argument("--folder", help="a folder of HR images (PNG, JPEG, BMP, TIFF, WebP)")
    _add_alpha(evaluate)
    evaluate.add_argument("--download", action="store_true", help="download a missing benchmark")
    evaluate.add_argument("--degrade-here", action="store_true",
                          help="make Set5's LR images here instead of using the MATLAB files")  # fmt: skip
    evaluate.add_argument("--tile", type=tile_size, default=0,
                          help=f"tile size for large images: 0 (none) or >= {2 * TILE_OVERLAP}")  # fmt: skip
    evaluate.add_argument("--self-ensemble", action="store_true",
                          help="average the model's outputs over the 8 flips and quarter turns "
                          "of each input (8x the work; EDSR's '+' rows)")  # fmt: skip
    evaluate.add_argument("--device", type=device_name, default="cpu")
    evaluate.add_argument("--json", help="also write the table as JSON here")
    evaluate.set_defaults(func=_eval)

    labs = sub.add_parser(
        "labs",
        parents=[debug],
        help="generate student labs from solutions/ (build), check them (check), or store the "
        "outputs nbval compares after running notebooks in QUICK mode (refresh NOTEBOOK...)",
    )
    labs.add_argument("action", choices=("build", "check", "refresh"))
    labs.add_argument("notebooks", nargs="*", help="refresh: the notebooks to run")
    labs.add_argument("--solutions", default="solutions")
    labs.add_argument("--labs", default="labs")
    labs.set_defaults(func=_labs)
    _add_competition(sub, debug)
    gui = sub.add_parser("gui", parents=[debug], help="the interactive demo in the browser "
                         '(Gradio: pip install "restorelab[gui]")')  # fmt: skip
    gui.add_argument("--host", default="127.0.0.1",
                     help="address to serve on (default: loopback only; 0.0.0.0 for all)")  # fmt: skip
    gui.add_argument("--port", type=number(int, 1), default=7860)
    gui.add_argument("--checkpoint", action="append", default=[],
                     help="a checkpoint to offer in the page (repeatable): a best.pt of restorelab "
                     "train, or a reference name; loaded with weights_only=True")  # fmt: skip
    gui.add_argument("--device", type=device_name, default="auto")
    gui.add_argument("--share", action="store_true",
                     help="also serve on a public gradio.live link (e.g. from Colab)")  # fmt: skip
    gui.set_defaults(func=_gui)
    return parser


def _check_args(args: argparse.Namespace) -> str | None:
    """The rules that span several options: the problem in words, or None."""
    if getattr(args, "sigma_range", None) and args.sigma_range[0] > args.sigma_range[1]:
        return f"argument --sigma-range: LOW must not exceed HIGH, got {args.sigma_range}"
    if args.command != "eval":
        return None
    task_options = [f"--{k.replace('_', '-')}" for k in TASK_DEFAULTS if k in vars(args)]
    if args.checkpoint and (args.task or task_options):
        given = ", ".join((["--task"] if args.task else []) + task_options)
        return f"{given}: the checkpoint holds its task; leave them out, or the checkpoint"
    if not args.checkpoint and not args.task:
        return "give a checkpoint, or --task (sr, jpeg, denoise) to score the baseline alone"
    for option in ("tile", "self_ensemble"):
        if getattr(args, option) and not args.checkpoint:
            flag = "--" + option.replace("_", "-")
            return f"argument {flag}: only a model's outputs change with it (give a checkpoint)"
    return None


def _one_line(error: BaseException) -> str:
    """An exception as one line: its message (a KeyError's without the quotes repr adds)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    message = " ".join(str(message).split()) or type(error).__name__
    if isinstance(error, USER_ERRORS):
        return message
    return f"{type(error).__name__}: {message} (rerun with --debug for the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a failure, 2 a bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a bad option (already printed)
        return stop.code if isinstance(stop.code, int) else 2
    problem = _check_args(args)
    if problem:
        print(f"restorelab {args.command}: error: {problem} (see restorelab {args.command} "
              "--help)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"restorelab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"restorelab {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, USER_ERRORS) else 1


if __name__ == "__main__":
    sys.exit(main())
