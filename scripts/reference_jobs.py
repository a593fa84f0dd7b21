"""The jobs of chapters 5-9 that `scripts/train_references.py train` runs at once on one GPU,
one process each (`train_references.py run NAME`): the descanning table (chapters 5, 6, 9), the
ESRGAN pair and its interpolation sweep (chapter 7), the inpainter's three strategies and the x2
upscaler (chapter 8). What each trains, how it is sized and what every job shares (its
:class:`Context`, the deadline, the targets): scripts/reference_plans.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import multiprocessing
import os
import signal
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from reference_plans import (
    DESCAN_JOBS,
    SEEDS,
    STRATEGIES,
    Context,
    Plan,
    best_weights,
    fit_until,
    half_gap,
    hardware,
    retried_in_fp32_eager,
    target,
)

from restorelab import descanning, metrics, models
from restorelab.data import embedded_photos


# ------------------------------------------------------------------ descanning (chapters 5, 6, 9)
def _render(item: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    from restorelab.data import SyntheticScans

    length, size, seed, index = item
    pair = SyntheticScans(length, size, seed=seed)[index]
    return tuple(image.mul(255).round().to(torch.uint8) for image in pair)


def render_pages(plan: Plan, path: Path) -> None:
    """The table's pages (what :func:`descanning.descanning_data` renders, seeds 0 and 1),
    rounded to 8 bits, in one file, rendered once on every core for the five descanning jobs."""
    if path.exists():
        return
    work = [(plan.pages, plan.page_size, 0, i) for i in range(plan.pages)]
    work += [(plan.val_pages, plan.page_size, 1, i) for i in range(plan.val_pages)]
    if len(work) < 16:  # a few pages (the dry run): starting the workers costs more
        pairs = [_render(item) for item in work]
    else:
        with multiprocessing.get_context("spawn").Pool(min(os.cpu_count() or 1, 16)) as pool:
            pairs = pool.map(_render, work)
    torch.save({"train": pairs[: plan.pages], "val": pairs[plan.pages :]}, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def load_pages(plan: Plan, path: Path) -> descanning.DescanData:
    stored = torch.load(path, weights_only=True)
    as_float = lambda pairs: [(s.float().div(255), c.float().div(255)) for s, c in pairs]  # noqa: E731
    return descanning.DescanData(f"synthetic {plan.pages} pages of {plan.page_size} px",
                                 as_float(stored["train"]), as_float(stored["val"]))  # fmt: skip


def run_descanning(job: str, ctx: Context) -> None:
    row, plan = DESCAN_JOBS[job], ctx.plan
    data = load_pages(plan, ctx.out.parent / "pages.pt")
    spec = descanning.row_card(row, plan.setting)
    folder = ctx.out / "run"
    model = descanning.build_row(row, plan.setting, plan.descan.seed)
    fast = ctx.fast(spec["architecture"])
    trainer = descanning.train_descanner(model, data, plan.descan, folder, progress=False,
                                         tensorboard=False, device=str(ctx.device), **fast)  # fmt: skip
    trainer.config.val_every = max(plan.descan.steps // 5, 1)
    done = fit_until(trainer, folder, ctx.until)
    net = best_weights(trainer, folder)
    scan = descanning.evaluate_descanner(None, data.val)
    ours = descanning.evaluate_descanner(net, data.val)
    budget = plan.descan
    ctx.record(
        job, net, spec, chapter={"DnCNN": 3, "SRResNet-style x1": 4, "KBNet": 5, "Restormer": 6}.get(row, 9),
        row=row, data=data.name + f", {plan.val_pages} held-out pages (seed 1)",
        recipe=f"restorelab.descanning.train_descanner, Budget {dataclasses.asdict(budget)}, "
               f"--fast settings {fast}, best.pt by {trainer.config.monitor}",
        steps=budget.steps, **done, batch_size=budget.batch_size, patch=budget.patch_size,
        evaluation={"model": ours, "input": scan},
        fp16_gap=half_gap(net, lambda m: descanning.evaluate_descanner(m, data.val)),
        targets=[target("Y-MAE at most half the scans' (lower is better)", ours["y_mae"],
                        scan["y_mae"] / 2, higher=False)],
    )  # fmt: skip


# ------------------------------------------------------------------ ESRGAN (chapter 7)
def lpips_metric(device: torch.device) -> torch.nn.Module | None:
    """LPIPS (AlexNet) where the package and its weights can be had, else None with a one-line
    note: the GPU machine is offline and has no lpips package. Called before training, so that
    nothing the sweep needs is found missing after the run."""
    from restorelab.backbones import MissingWeightsError

    try:
        return metrics.LPIPS(net="alex").to(device)
    except (ImportError, MissingWeightsError) as error:
        print(f"LPIPS left out of the interpolation sweep: {str(error).splitlines()[0]}")
        return None


def run_esrgan(job: str, ctx: Context) -> None:
    from restorelab.data import RandomPatches, training_images
    from restorelab.experiment import make_trainer, mean_scores
    from restorelab.interpolation import interpolation_sweep
    from restorelab.losses import WeightedSum, l1_loss
    from restorelab.tasks import SuperResolution
    from restorelab.train import GANConfig, GANTrainer

    plan = ctx.plan
    task = SuperResolution(scale=4, channels="rgb", pre_upsample=False)
    train_images = training_images(ctx.data, min_size=plan.sr_patch)
    val_images = [task.crop(im) for im in embedded_photos("val")]
    lpips = lpips_metric(ctx.device)
    split = ctx.until - (ctx.until - time.time()) * plan.gan_steps / (
        plan.psnr_steps + plan.gan_steps
    )
    psnr_dir, gan_dir = ctx.out / "psnr", ctx.out / "gan"
    config = ctx.config(plan.psnr_steps, plan.sr_batch, lr=2e-4, seed=0, **ctx.fast("rrdbnet"))
    psnr_trainer = make_trainer("rrdbnet", task, train_images, val_images, config, psnr_dir,
                                patch_size=plan.sr_patch, loss="l1", **plan.rrdb)  # fmt: skip
    psnr_done = fit_until(psnr_trainer, psnr_dir, split)
    psnr_model = best_weights(psnr_trainer, psnr_dir)
    # ESRGAN's generator loss is 1e-2 L1 + 1 perceptual + 5e-3 RaGAN, but VGG19's weights cannot
    # be downloaded on the GPU machine; 1e-2 L1 alone left RaGAN in charge (a CPU run fell from
    # 29.3 to 7.0 dB in 80 steps), so L1 takes the perceptual term's weight, 1 (as SRGAN's
    # MSE-based variant, content + 1e-3 adversarial)
    content = WeightedSum(l1=(1.0, l1_loss))
    gan_config = ctx.config(plan.gan_steps, plan.sr_batch, lr=1e-4, betas=(0.9, 0.99),
                            scheduler="constant", seed=1, **ctx.fast("rrdbnet", compile=False))  # fmt: skip
    generator = models.build("rrdbnet", in_channels=3, out_channels=3, **plan.rrdb)
    generator.load_state_dict(psnr_model.state_dict())
    gan_trainer = GANTrainer(
        generator.train(), models.build("vgg_discriminator", **plan.discriminator),
        RandomPatches(train_images, plan.sr_patch, seed=1), content, gan_config,
        GANConfig(loss="ragan", adversarial_weight=5e-3), make_pair=task.make_pair,
        validate=lambda net: mean_scores(task.evaluate(net, val_images)), out_dir=gan_dir,
    )  # fmt: skip
    gan_done = fit_until(gan_trainer, gan_dir, ctx.until)
    gan_model = gan_trainer.evaluated_model().eval()  # the last generator: best.pt follows PSNR
    sweep = interpolation_sweep(psnr_model, gan_model, task, val_images, lpips=lpips)
    score = lambda net: mean_scores(task.evaluate(net, val_images))  # noqa: E731
    bicubic = mean_scores(task.evaluate(None, val_images))
    gan_niqe, psnr_niqe = sweep[-1]["niqe"], sweep[0]["niqe"]
    judged = target("the GAN model's NIQE below the PSNR model's (lower is better)",
                    gan_niqe, math.nan if psnr_niqe is None else psnr_niqe, higher=False)  # fmt: skip
    data = (f"{ctx.data} (the chapter 1-4 training images), patches of {plan.sr_patch} px HR; "
            "validation: the embedded validation photos")  # fmt: skip
    spec = {
        "architecture": "rrdbnet",
        "preset": "paper",
        "kwargs": {"in_channels": 3, "out_channels": 3, **plan.rrdb},
    }
    common = {"chapter": 7, "data": data, "batch_size": plan.sr_batch, "sweep": sweep,
              "targets": [judged]}  # fmt: skip
    ctx.record("esrgan-psnr", psnr_model, spec, **common,
               recipe="L1, Adam 2e-4, cosine (book/07_esrgan.ipynb's PSNR model); --fast settings",
               steps=plan.psnr_steps, **psnr_done,
               evaluation={"model": score(psnr_model), "input": bicubic},
               fp16_gap=half_gap(psnr_model, score))  # fmt: skip
    ctx.record("esrgan-gan", gan_model, spec, **common,
               recipe="from esrgan-psnr: L1 + 5e-3 RaGAN (L1 in place of the perceptual term: no "
                      "VGG19 weights offline), Adam 1e-4 (0.9, 0.99), constant; VGG-style discriminator",
               steps=plan.gan_steps, **gan_done,
               evaluation={"model": score(gan_model), "input": bicubic},
               fp16_gap=half_gap(gan_model, score))  # fmt: skip


# ------------------------------------------------------------------ inpainter (chapter 8)
def inpaint_data(plan: Plan) -> tuple[list, list[int], list, list[int]]:
    """(training crops, their photo classes, validation crops, theirs): chapter 8's embedded
    crops, in memory (the GPU machine has no `datasets` package to write Arrow)."""
    from restorelab.data import embedded_crops

    rows = list(embedded_crops(plan.inpaint_val + plan.inpaint_images, plan.image_size, seed=0))
    val, train = rows[: plan.inpaint_val], rows[plan.inpaint_val :]
    return (
        [im for im, _ in train],
        [c for _, c in train],
        [im for im, _ in val],
        [c for _, c in val],
    )


def mean_fill_psnr(images: list, damage: list) -> float:
    """PSNR of filling every hole with the mean colour of the image's known pixels: a fill that
    takes its surroundings' colours must beat it."""
    from restorelab.tasks.inpaint import mean_colour_fill

    values = [metrics.psnr(mean_colour_fill(inputs), image)
              for image, (inputs, _) in zip(images, damage, strict=True)]  # fmt: skip
    return sum(values) / len(values)


INPAINT_LR = 1e-3  # Adam, on the plan's cosine schedule


def inpaint_task(plan: Plan, fill: float = 0.0):
    """The inpainters' task: crops of ``plan.crop``, holes over 10-40% of each crop filled with
    ``fill``, noise of up to 10 levels on the known pixels."""
    from restorelab.degrade.masks import MaskConfig
    from restorelab.tasks import Inpainting

    mask = MaskConfig(coverage=(0.1, 0.4), noise_sigma=(0.0, 10.0), fill=fill)
    return Inpainting(crop=plan.crop, mask=mask)


def class_slots(plan: Plan, train: list, true_classes: list[int]) -> int:
    """Rows of the class embedding: room for the true classes and for the most clusters."""
    return max(max(true_classes) + 1, len(train) // plan.min_cluster_size)


def run_inpaint(job: str, ctx: Context) -> None:
    from restorelab.cluster import cluster_features, image_features
    from restorelab.experiment import make_inpainting_trainer, mean_scores

    plan, seed = ctx.plan, int(job.removeprefix("inpaint-seed"))
    train, true_classes, val, val_true = inpaint_data(plan)
    slots = class_slots(plan, train, true_classes)
    task = inpaint_task(plan)
    damage = task.fixed_damage(val)
    damaged_psnr = mean_scores(task.evaluate(None, val, damage=damage))["psnr"]
    fill_psnr = mean_fill_psnr(val, damage)
    clusters_file = ctx.out.parent / "inpaint-seed0" / "clusters.json"
    zeros, val_zeros = [0] * len(train), [0] * len(val)
    order = ["BASELINE", "REAL", "MAX_CLASS"] if seed == 0 else ["BASELINE", "MAX_CLASS", "REAL"]
    for strategy in order:
        if strategy == "REAL":
            while not clusters_file.exists() and time.time() < ctx.until:
                time.sleep(2)
            if not clusters_file.exists():
                print("no clusters from inpaint-seed0 in time: REAL not trained", flush=True)
                continue
            clusters = json.loads(clusters_file.read_text())
            classes, val_classes = clusters["train"], clusters["val"]
        else:
            classes, val_classes = (
                (zeros, val_zeros) if strategy == "BASELINE" else (true_classes, val_true)
            )
        folder = ctx.out / strategy
        config = ctx.config(plan.inpaint_steps, plan.inpaint_batch, lr=INPAINT_LR, seed=seed,
                            **ctx.fast("unet_inpainter"))  # fmt: skip
        trainer = make_inpainting_trainer(task, train, classes, val, val_classes, config, folder,
                                          num_classes=slots, **plan.unet)  # fmt: skip
        done = fit_until(trainer, folder, ctx.until)
        net = best_weights(trainer, folder)
        if strategy == "BASELINE" and seed == 0:  # chapter 8: clusters of BASELINE's features
            clustering = cluster_features(image_features(net, train), n_components=10,
                                          min_cluster_size=plan.min_cluster_size, min_samples=2, seed=0)  # fmt: skip
            found = {"train": clustering.labels.tolist(), "k": clustering.k,
                     "val": clustering.predict(image_features(net, val)).tolist()}  # fmt: skip
            tmp = clusters_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(found))
            os.replace(tmp, clusters_file)

        def score(m, val_classes=val_classes):
            return mean_scores(task.evaluate(m, val, val_classes, damage=damage))

        psnr = score(net)["psnr"]
        entry = dict(
            chapter=8, seed=seed, strategy=strategy, steps=plan.inpaint_steps, **done,
            batch_size=plan.inpaint_batch, num_classes=slots,
            data=f"{len(train)} crops of {plan.image_size} px of the embedded photos (seed 0), "
                 f"{len(val)} held out with fixed damage; training crops of {plan.crop} px",
            recipe="restorelab.experiment.make_inpainting_trainer, L1, Adam 1e-3, cosine; "
                   "--fast settings",
            evaluation={"psnr": psnr, "damaged_psnr": damaged_psnr, "mean_fill_psnr": fill_psnr},
            targets=[target("PSNR above a fill with each image's mean known colour", psnr, fill_psnr, higher=True)],
        )  # fmt: skip
        if seed == 0:
            entry["fp16_gap"] = half_gap(net, score)
            spec = {"architecture": "unet_inpainter", "preset": "paper",
                    "kwargs": {"num_classes": slots, **plan.unet}}  # fmt: skip
            ctx.record(STRATEGIES[strategy], net, spec, **entry)
        else:
            ctx.references[f"{STRATEGIES[strategy]}@seed{seed}"] = entry


def run_upscaler(job: str, ctx: Context) -> None:
    from restorelab.data import RandomPatches
    from restorelab.experiment import mean_scores
    from restorelab.tasks import SuperResolution
    from restorelab.train import Trainer, seed_everything

    plan = ctx.plan
    train, _, _, _ = inpaint_data(plan)
    task = SuperResolution(scale=2, channels="rgb", pre_upsample=False)
    val = [task.crop(im) for im in embedded_photos("val")]

    score = lambda net: mean_scores(task.evaluate(net, val))  # noqa: E731
    seed_everything(0)
    model = models.build("srcnn", "rgb", scale=2, **plan.upscaler_kwargs)
    config = ctx.config(plan.upscaler_steps, plan.inpaint_batch, lr=1e-3, scheduler="plateau",
                        gamma=0.5, patience=3, seed=0, **ctx.fast("srcnn"))  # fmt: skip
    config.val_every = max(plan.upscaler_steps // 10, 1)
    folder = ctx.out / "run"
    crops = RandomPatches(train, plan.crop, seed=0)  # random HR crops, LR by bicubic (chapter 8)
    trainer = Trainer(model, crops, F.l1_loss, config, task.make_pair, score, folder)
    done = fit_until(trainer, folder, ctx.until)
    net = best_weights(trainer, folder)
    ours, bicubic = score(net), score(None)
    spec = {
        "architecture": "srcnn",
        "preset": "rgb",
        "kwargs": {"scale": 2, **plan.upscaler_kwargs},
    }
    ctx.record(
        "inpaint-upscaler-x2", net, spec, chapter=8, steps=plan.upscaler_steps, **done,
        batch_size=plan.inpaint_batch,
        data=f"the inpainter's {len(train)} training crops, HR crops of {plan.crop} px (flips "
             "and turns); "
             "validation: the embedded validation photos",
        recipe="L1, Adam 1e-3, plateau (halve after 3 validations without progress; the "
               "project: 1e-4); --fast settings",
        evaluation={"model": ours, "input": bicubic}, fp16_gap=half_gap(net, score),
        targets=[target("Y-PSNR above bicubic on the validation photos", ours["psnr_y"],
                        bicubic["psnr_y"], higher=True)],
    )  # fmt: skip


MODERN_RUNNERS = {**dict.fromkeys(DESCAN_JOBS, run_descanning), "esrgan": run_esrgan,
                  **{f"inpaint-seed{s}": run_inpaint for s in SEEDS}, "upscaler": run_upscaler}  # fmt: skip


def run_modern(job: str, ctx: Context) -> None:
    """Train and score ``job`` into ``ctx.out``; write its run.json and result.json. A run
    resumed from its last.pt adds its wall time to the earlier calls' (their run.json), those
    stopped by SIGTERM (the parent's deadline, or by hand) included: they write it on the way out."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    earlier = ctx.out / "run.json"
    before = json.loads(earlier.read_text())["wall_seconds"] if earlier.exists() else 0.0
    started = time.perf_counter()

    def write_run(settings: str) -> dict:
        run = {"name": job, "wall_seconds": round(before + time.perf_counter() - started, 1),
               "hardware": hardware(ctx.device), "torch": torch.__version__, "commit": ctx.commit,
               "date": datetime.date.today().isoformat(), "settings": settings}  # fmt: skip
        earlier.write_text(json.dumps(run, indent=2) + "\n")
        return run

    def stopped(signum: int, frame: object) -> None:
        write_run("stopped before the end (SIGTERM); resumed from last.pt")
        raise SystemExit(128 + signum)

    def attempt(fp32_eager: bool) -> None:
        ctx.references.clear()
        ctx.fp32_eager = fp32_eager
        MODERN_RUNNERS[job](job, ctx)

    handler = signal.signal(signal.SIGTERM, stopped)
    try:
        run = write_run(retried_in_fp32_eager(job, ctx.out, attempt))
    finally:
        signal.signal(signal.SIGTERM, handler)
    (ctx.out / "result.json").write_text(
        json.dumps({"references": ctx.references}, indent=2) + "\n"
    )
    print(json.dumps({**run, "references": sorted(ctx.references)}), flush=True)
