"""BasicSR's training loop beside restorelab's Trainer: MSRResNet x4, same batch, patch, device.

Issue 18's peer. Run from the repository root: ``PYTHONPATH=. python3 benchmarks/basicsr_peer.py
[--out DIR] [--cpu-only]`` (``benchmarks/gpu.sh`` runs it after the GPU check). Needs
``basicsr`` 1.4.2 (PyPI, an sdist: ``pip wheel --no-deps basicsr==1.4.2`` makes a pure-Python
wheel). Importing it and its training loop needs torch, torchvision, numpy, OpenCV, SciPy, tqdm
(restorelab's requirements too), PyYAML and requests, none of its other requirements (addict,
future, lmdb, yapf, tb-nightly, scikit-image). Without basicsr it prints why and writes a result
saying the peer was skipped.

Both loops train MSRResNet x4 (64 features, 16 blocks, 1,517,571 parameters each) with an L1
loss and Adam on the photos shipped with restorelab (``restorelab.data.embedded``):

- BasicSR: the inner loop of ``basicsr.train.train_pipeline`` (``update_learning_rate``,
  ``feed_data``, ``optimize_parameters`` of its ``SRModel``, batches from its
  ``PairedImageDataset`` through ``EnlargedSampler``, ``build_dataloader`` and
  ``CPUPrefetcher``), with the settings of its ``options/train/SRResNet_SRGAN/
  train_MSRResNet_x4.yml`` (Adam 2e-4, betas (0.9, 0.99), cosine restarts, EMA 0.999, 6 loader
  workers, random crops, flips and turns) except the patch, batch and data. Its data are on
  disk as it expects: the photos cut into 480x480 sub-images with step 240 (as its
  ``scripts/data_preparation/extract_subimages.py`` does for DIV2K), LR by MATLAB-style bicubic
  (``restorelab.degrade.bicubic_resize``), 8-bit PNG, in a temporary folder.
- restorelab: the :class:`~restorelab.train.Trainer` under the ``--fast`` preset
  (``restorelab.train.fast_settings``), the ``msrresnet`` model of ``gpu_check.MODELS``, the
  same learning rate and betas (no EMA: the Trainer keeps none).

On CUDA: batch and GT patch of ``gpu_check.MODELS["msrresnet"]`` (16, 96), 10 warm-up and 100
timed iterations each; then, and alone with ``--cpu-only``, the same two loops on the CPU with
batch 4 and GT patch 64, 3 warm-up and 20 timed iterations, one torch thread and no loader
workers. Iterations/s of each and their ratio (issue 18's target on the GPU: restorelab at least
2x) go to ``OUT/basicsr_peer.{json,md}`` (``basicsr_peer_cpu.*`` when only the CPU ran).
"""

from __future__ import annotations

import argparse
import gc
import logging
import platform
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # restorelab from this checkout, installed or not

from gpu_check import MODELS, _trainer, timed_fit  # noqa: E402 (this folder, on sys.path)
from report import save  # noqa: E402

from restorelab.data import embedded_photos  # noqa: E402
from restorelab.degrade import bicubic_resize  # noqa: E402
from restorelab.train import fast_settings  # noqa: E402

SCALE, SUB_IMAGE, SUB_STEP = 4, 480, 240
TARGET = 2.0  # restorelab's iterations/s over BasicSR's, on the GPU
# device -> batch, GT patch, warm-up and timed iterations, loader workers
RUNS = {
    "cuda": (MODELS["msrresnet"][3], MODELS["msrresnet"][2], 10, 100, 6),
    "cpu": (4, 64, 3, 20, 0),
}


def import_basicsr() -> str | None:
    """Import basicsr (registering its datasets, networks and models); the reason it cannot
    be imported, or None.

    basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision 0.17
    removed: its one function used there, ``rgb_to_grayscale``, is still in ``functional``."""
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401
    except ModuleNotFoundError:
        from torchvision.transforms import functional

        shim = types.ModuleType("torchvision.transforms.functional_tensor")
        shim.rgb_to_grayscale = functional.rgb_to_grayscale
        sys.modules[shim.__name__] = shim
    try:
        import basicsr
        from basicsr.utils import get_root_logger
    except ImportError as error:
        return f"basicsr cannot be imported ({type(error).__name__}: {error})"
    get_root_logger(log_level=logging.WARNING)  # no network printout, no per-step log
    return None if basicsr.__version__ == "1.4.2" else f"basicsr {basicsr.__version__}, not 1.4.2"


def write_pairs(folder: Path) -> int:
    """The embedded training photos as BasicSR's disk layout: ``folder/gt/NAME.png`` (480x480
    sub-images, step 240, the last one flush with the border) and ``folder/lq/NAME.png`` (the
    x4 bicubic downscale, 120x120); returns the number of pairs."""
    import cv2  # BasicSR reads its images with OpenCV: it is there whenever basicsr is

    for name in ("gt", "lq"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    count = 0
    for index, photo in enumerate(embedded_photos("train")):
        h, w = photo.shape[-2:]
        if min(h, w) < SUB_IMAGE:
            continue
        tops, lefts = (_starts(side) for side in (h, w))
        for top in tops:
            for left in lefts:
                hr = photo[:, top : top + SUB_IMAGE, left : left + SUB_IMAGE]
                lr = bicubic_resize(hr, 1 / SCALE)
                for name, image in (("gt", hr), ("lq", lr)):
                    pixels = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
                    cv2.imwrite(str(folder / name / f"{index:02d}_{top:04d}_{left:04d}.png"),
                                cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_PNG_COMPRESSION, 3])  # fmt: skip
                count += 1
    return count


def _starts(side: int) -> list[int]:
    starts = list(range(0, side - SUB_IMAGE + 1, SUB_STEP))
    return starts if starts[-1] == side - SUB_IMAGE else [*starts, side - SUB_IMAGE]


def basicsr_options(folder: Path, device: str, batch: int, patch: int, workers: int) -> dict:
    """train_MSRResNet_x4.yml as BasicSR's ``parse_options`` would hand it over, with our data,
    device, batch, patch and workers (no validation, logging or checkpoints in the timed loop)."""
    return {
        "name": "restorelab_peer", "model_type": "SRModel", "scale": SCALE, "is_train": True,
        "num_gpu": 1 if device == "cuda" else 0, "manual_seed": 0, "dist": False, "rank": 0,
        "world_size": 1,
        "datasets": {"train": {
            "name": "embedded", "type": "PairedImageDataset", "phase": "train", "scale": SCALE,
            "dataroot_gt": str(folder / "gt"), "dataroot_lq": str(folder / "lq"),
            "filename_tmpl": "{}", "io_backend": {"type": "disk"}, "gt_size": patch,
            "use_hflip": True, "use_rot": True, "num_worker_per_gpu": workers,
            "batch_size_per_gpu": batch, "dataset_enlarge_ratio": 100, "prefetch_mode": None,
        }},
        "network_g": {"type": "MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64,
                      "num_block": 16, "upscale": SCALE},
        "path": {"pretrain_network_g": None, "param_key_g": "params", "strict_load_g": True,
                 "resume_state": None},
        "train": {
            "ema_decay": 0.999,
            "optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [250000] * 4,
                          "restart_weights": [1] * 4, "eta_min": 1e-7},
            "total_iter": 1_000_000, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        },
    }  # fmt: skip


def time_basicsr(opt: dict, warmup: int, iterations: int) -> dict:
    """Iterations/s of BasicSR's loop (train_pipeline's inner loop, as written there)."""
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.prefetch_dataloader import CPUPrefetcher
    from basicsr.models import build_model

    torch.backends.cudnn.benchmark = True  # as train_pipeline sets it
    dataset_opt = opt["datasets"]["train"]
    train_set = build_dataset(dataset_opt)
    sampler = EnlargedSampler(train_set, 1, 0, dataset_opt["dataset_enlarge_ratio"])
    loader = build_dataloader(train_set, dataset_opt, num_gpu=opt["num_gpu"], dist=False,
                              sampler=sampler, seed=opt["manual_seed"])  # fmt: skip
    model = build_model(opt)
    prefetcher = CPUPrefetcher(loader)  # prefetch_mode: ~ in the options file
    sampler.set_epoch(0)
    prefetcher.reset()
    sync = torch.cuda.synchronize if opt["num_gpu"] else (lambda: None)
    started = time.perf_counter()
    for current_iter in range(1, warmup + iterations + 1):
        if current_iter == warmup + 1:
            sync()
            timed = time.perf_counter()
        train_data = prefetcher.next()
        model.update_learning_rate(current_iter, warmup_iter=opt["train"].get("warmup_iter", -1))
        model.feed_data(train_data)
        model.optimize_parameters(current_iter)
    sync()
    seconds = time.perf_counter() - timed
    loss = model.get_current_log()["l_pix"]
    parameters = sum(p.numel() for p in model.net_g.parameters())
    del prefetcher, loader, model  # the loader's workers end here
    gc.collect()
    return {"iterations_per_second": iterations / seconds, "warmup_seconds": timed - started,
            "parameters": parameters, "last_loss": loss, "pairs": len(train_set)}  # fmt: skip


def time_restorelab(device: str, batch: int, patch: int, warmup: int, iterations: int) -> dict:
    """Iterations/s of restorelab's Trainer under the fast preset (compilation in the warm-up)."""
    fields = {**fast_settings("msrresnet", device), "lr": 2e-4, "betas": (0.9, 0.99)}
    trainer = _trainer("msrresnet", device == "cpu", warmup + iterations, device=device,
                       batch=batch, patch=patch, **fields)  # fmt: skip
    row = timed_fit(trainer, warmup, iterations, 0)
    losses = [r["loss"] for r in trainer.history if r["kind"] == "train"]
    return {"iterations_per_second": row["steps_per_second"], "warmup_seconds":
            row["warmup_seconds"], "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "last_loss": losses[-1], "fields": {k: str(v) for k, v in fields.items()}}  # fmt: skip


def compare(device: str, folder: Path) -> dict:
    batch, patch, warmup, iterations, workers = RUNS[device]
    if device == "cpu":
        torch.set_num_threads(1)
    opt = basicsr_options(folder, device, batch, patch, workers)
    basicsr = time_basicsr(opt, warmup, iterations)
    print(f"[peer] {device}: BasicSR {basicsr['iterations_per_second']:.2f} it/s", flush=True)
    ours = time_restorelab(device, batch, patch, warmup, iterations)
    ratio = ours["iterations_per_second"] / basicsr["iterations_per_second"]
    print(f"[peer] {device}: restorelab {ours['iterations_per_second']:.2f} it/s "
          f"({ratio:.2f}x BasicSR)", flush=True)  # fmt: skip
    return {"device": device, "batch_size": batch, "gt_patch": patch, "lr_patch": patch // SCALE,
            "warmup_iterations": warmup, "timed_iterations": iterations,
            "basicsr_workers": workers, "torch_threads": torch.get_num_threads(),
            "basicsr": basicsr, "restorelab": ours, "ratio": ratio}  # fmt: skip


def device_text(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()})"


def markdown(report: dict) -> list[str]:
    lines = ["# BasicSR 1.4.2 beside restorelab: MSRResNet x4 training iterations/s", ""]
    if report.get("skipped"):
        return [*lines, f"Skipped: {report['skipped']}."]
    lines += [f"torch {report['torch']}, {report['pairs']} PNG pairs (GT 480x480, LR 120x120) "
              f"for BasicSR; {report['seconds']:.0f} s in all.", "",
              "| device | batch | GT patch | BasicSR it/s | restorelab it/s | restorelab / "
              "BasicSR | notes |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in report["runs"]:
        if "failed" in run:
            lines.append(f"| {run['device_name']} | failed: {run['failed']} | | | | | |")
            continue
        b, r = run["basicsr"], run["restorelab"]
        lines.append(
            f"| {run['device_name']} | {run['batch_size']} | {run['gt_patch']} | "
            f"{b['iterations_per_second']:.2f} | {r['iterations_per_second']:.2f} | "
            f"{run['ratio']:.2f}x | {run['warmup_iterations']} warm-up + "
            f"{run['timed_iterations']} timed iterations; {run['torch_threads']} torch "
            f"thread(s); BasicSR {run['basicsr_workers']} loader workers |"
        )
    lines += ["", "BasicSR: `SRModel` + `PairedImageDataset` from disk, the settings of "
              "train_MSRResNet_x4.yml (EMA 0.999 included). restorelab: `Trainer` with the fast "
              "preset (`fast_settings`) and BasicSR's learning rate and betas:", ""]  # fmt: skip
    lines += [f"- {run['device']}: " + ", ".join(f"{k}={v}" for k, v in
              run["restorelab"]["fields"].items()) for run in report["runs"] if "failed" not in run]  # fmt: skip
    lines.append("")
    for run in report["runs"]:
        if run["device"] == "cuda":
            reached = ("not evaluated (the CUDA run failed)" if "failed" in run else
                       f"{run['ratio']:.2f}x, reached: {'yes' if run['ratio'] >= TARGET else '**no**'}")  # fmt: skip
            lines.append(f"Target on the GPU: restorelab >= {TARGET:g}x BasicSR's it/s: {reached}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--cpu-only", action="store_true", help="skip the CUDA comparison")
    args = parser.parse_args()
    devices = ["cpu"] if args.cpu_only or not torch.cuda.is_available() else ["cuda", "cpu"]
    name = "basicsr_peer" if "cuda" in devices else "basicsr_peer_cpu"
    report = {"torch": torch.__version__, "python": platform.python_version()}
    why_not = import_basicsr()
    if why_not:
        print(f"[peer] skipped: {why_not}; install basicsr 1.4.2 (benchmarks/gpu.sh installs "
              "it from the wheel folder .whl/)", flush=True)  # fmt: skip
        save(name, {**report, "skipped": why_not}, markdown({"skipped": why_not}), Path(args.out))
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        report["pairs"] = write_pairs(Path(folder))
        report["runs"] = []
        for device in devices:
            run = {"device": device, "device_name": device_text(device)}
            try:
                run.update(compare(device, Path(folder)))
            except Exception as error:  # reported; the CPU comparison still runs after CUDA's
                run["failed"] = f"{type(error).__name__}: {error}"
                print(f"[peer] {device}: failed: {traceback.format_exc()}", flush=True)
            report["runs"].append(run)
            report["seconds"] = time.perf_counter() - started
            # written after each device: kept if an outer time limit stops the next one
            save(name, report, markdown(report), Path(args.out))


if __name__ == "__main__":
    main()
