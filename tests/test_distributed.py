"""DistributedDataParallel on CPU (gloo, 2 processes): the same run as one process, resumable."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import quiet_port
from train_runs import (
    ROOT,
    environment,
    final_state,
    image_folders,
    log_steps,
    run,
    torchrun,
    train_args,
)

from restorelab import distributed, models
from restorelab.data import RandomPatches
from restorelab.experiment import make_inpainting_trainer
from restorelab.tasks import Denoising, Inpainting
from restorelab.train import StepSampler, TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without distributed")

# denoising: make_pair draws random noise, so the ranks must degrade the global batch together
TASK = Denoising(sigma=25)
IMAGES = [torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(3)]


def _trainer(out_dir, steps: int = 10, sampler: str = "loader") -> Trainer:
    """``sampler``: "loader", "device", or "device-inpainting" (chapter 8's class-conditioned
    U-Net: its inputs are a tuple (damaged image, classes), its images whole and labelled)."""
    config = TrainConfig(
        steps=steps, batch_size=4, lr=1e-3, val_every=5, log_every=2, progress=False, seed=5,
        device="cpu", tensorboard=False, sampler=sampler.removesuffix("-inpainting"),
    )  # fmt: skip
    if sampler.endswith("-inpainting"):
        task = Inpainting(crop=16)
        return make_inpainting_trainer(task, IMAGES, [0, 1, 0], IMAGES[:1], [0], config, out_dir,
                                       num_classes=2, features=4, depth=2, embed_dim=4)  # fmt: skip
    torch.manual_seed(0)
    model = models.build("srcnn", features=(8, 4))

    def validate(net):
        return {"psnr": sum(TASK.evaluate(net, IMAGES[:1])["psnr"])}

    patches = RandomPatches(IMAGES, 16, seed=config.seed)
    return Trainer(model, patches, F.mse_loss, config, TASK.make_pair, validate, out_dir)


def _as_torchrun(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))  # fmt: skip
    torch.set_num_threads(1)


def _rank(rank: int, world: int, port: int, out_dir: str, sampler: str) -> None:
    """One rank of a Python (not command-line) run, with torchrun's environment variables."""
    _as_torchrun(rank, world, port)
    try:
        trainer = _trainer(out_dir, sampler=sampler)
        assert (distributed.rank(), distributed.world_size()) == (rank, world)
        trainer.fit()
    finally:
        distributed.shutdown()


def _refuse_on_rank_0(rank: int, port: int, out_dir: str) -> None:
    """Rank 0 finds a problem (here: a run folder in the way); every rank must stop with it."""
    _as_torchrun(rank, 2, port)
    distributed.init(torch.device("cpu"))

    def check() -> None:
        if distributed.rank() == 0:
            raise FileExistsError("runs/x already holds a run")

    try:
        distributed.agree(check)
    except FileExistsError as error:
        (Path(out_dir) / f"{rank}.txt").write_text(str(error))
    assert distributed.agree(lambda: distributed.rank() + 42) == 42  # rank 0's answer
    distributed.shutdown()


def test_sampler_shards_each_global_batch():
    whole = list(StepSampler(10**6, 8, 24, seed=1, batch_size=4))
    shards = [list(StepSampler(10**6, 8, 24, seed=1, batch_size=4, rank=r, world_size=2))
              for r in range(2)]  # fmt: skip
    assert [len(StepSampler(10**6, 8, 24, 1, 4, r, 2)) for r in range(2)] == [8, 8]
    for step in range(4):  # step s of rank r: the r-th half of step s of one process
        assert shards[0][2 * step : 2 * step + 2] == whole[4 * step : 4 * step + 2]
        assert shards[1][2 * step : 2 * step + 2] == whole[4 * step + 2 : 4 * step + 4]
    with pytest.raises(ValueError, match="multiple of the 3 ranks"):
        StepSampler(10, 0, 8, 0, batch_size=4, world_size=3)


def test_an_error_on_rank_0_stops_every_rank_with_its_message(tmp_path):
    mp.spawn(_refuse_on_rank_0, args=(quiet_port(), str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"{r}.txt").read_text() for r in range(2)] == [
        "runs/x already holds a run"
    ] * 2


@pytest.mark.parametrize("sampler", ["loader", "device", "device-inpainting"])
def test_two_ranks_train_the_same_weights_as_one(tmp_path, sampler):
    # the device sampler cuts the global batch on every rank, each keeps its shard
    mp.spawn(_rank, args=(2, quiet_port(), str(tmp_path / "two"), sampler), nprocs=2, join=True)
    one = _trainer(tmp_path / "one", sampler=sampler)
    one.fit()
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    difference = max(
        (value - two["model"][name]).abs().max().item()
        for name, value in one.model.state_dict().items()
    )
    print(f"largest weight difference, 1 rank vs 2 ranks: {difference:.3g}")
    assert difference < 1e-5
    initial = _trainer(None, sampler=sampler).model.state_dict()
    moved = max((v - initial[k]).abs().max().item() for k, v in one.model.state_dict().items())
    assert moved > 100 * difference  # the runs trained: their agreement means something
    rows = [(r["step"], r["kind"]) for r in two["history"]]
    assert rows == [(r["step"], r["kind"]) for r in one.history]
    for mine, theirs in zip(one.history, two["history"], strict=True):
        for key in ("loss", "psnr", "psnr_y"):
            if key in mine:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-5), (mine, theirs)
    assert not (tmp_path / "two" / "tensorboard").exists()  # rank 0 wrote, and only what asked


def test_torchrun_two_ranks_killed_and_resumed_is_bit_identical(tmp_path):
    data = image_folders(tmp_path)
    run(torchrun(2, train_args(data, tmp_path / "straight")))
    out = tmp_path / "killed"
    # rank 0 (the one that writes) kills torchrun and both ranks while it writes its second
    # checkpoint: the first (step 3) is in place, the second's temporary file is not renamed yet
    child = subprocess.Popen(
        torchrun(2, train_args(data, out), kill_at=("save", 2)), env=environment(), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = child.communicate(timeout=300)  # its pipe closes when the ranks are gone too
    except subprocess.TimeoutExpired:  # never killed: no rank is left running to go on writing
        for process in [*psutil.Process(child.pid).children(recursive=True), child]:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                process.kill()
        raise
    assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3
    assert list(out.glob(".last.pt.*.tmp")), sorted(path.name for path in out.iterdir())
    shutil.copytree(out, tmp_path / "on_one_rank")

    run(torchrun(2, train_args(data, out, "--resume")))
    weights, log = final_state(out)
    straight_weights, straight_log = final_state(tmp_path / "straight")
    assert log == straight_log
    assert all(torch.equal(v, weights[k]) for k, v in straight_weights.items())

    # the same checkpoint resumed by one process: same data, same result to float tolerance
    run([sys.executable, "-m", "restorelab",
         *train_args(data, tmp_path / "on_one_rank", "--resume")])  # fmt: skip
    one_weights, _ = final_state(tmp_path / "on_one_rank")
    assert log_steps(tmp_path / "on_one_rank") == log_steps(tmp_path / "straight")
    for name, value in straight_weights.items():
        torch.testing.assert_close(one_weights[name], value, rtol=1e-4, atol=1e-5)
