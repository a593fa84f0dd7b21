import csv

import pytest
import torch
import torch.nn.functional as F

from restorelab import models
from restorelab.data import RandomPatches
from restorelab.tasks import SuperResolution
from restorelab.train import TrainConfig, Trainer, save_atomic

TASK = SuperResolution(scale=2)
IMAGES = [torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(i)) for i in range(3)]


def _trainer(out_dir, steps, **overrides):
    config = TrainConfig(
        steps=steps, batch_size=4, lr=1e-3, val_every=4, log_every=2, progress=False, seed=7,
        **overrides,
    )  # fmt: skip
    torch.manual_seed(0)
    model = models.build("srcnn", features=(8, 4))
    val = [IMAGES[0]]

    def validate(net):
        return {"psnr_y": sum(TASK.evaluate(net, val)["psnr_y"])}

    patches = RandomPatches(IMAGES, 16, seed=config.seed)
    return Trainer(model, patches, F.mse_loss, config, TASK.make_pair, validate, out_dir)


def test_resume_continues_exactly(tmp_path):
    straight = _trainer(tmp_path / "straight", 12)
    straight.fit()
    first = _trainer(tmp_path / "split", 12)
    first.fit(stop_at=6)  # as if the session ended half way
    assert first.step == 6
    second = _trainer(tmp_path / "split", 12)
    second.fit(resume=True)
    assert second.step == 12
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    # the log of the resumed run equals the uninterrupted one (times aside)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(second.history) == strip(straight.history)


def test_checkpoints_logs_and_best(tmp_path):
    trainer = _trainer(tmp_path, 8)
    history = trainer.fit()
    assert {"last.pt", "best.pt", "log.csv", "tensorboard"} <= {p.name for p in tmp_path.iterdir()}
    assert not list(tmp_path.glob(".*.tmp"))
    vals = [r["psnr_y"] for r in history if r["kind"] == "val"]
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["best"] == pytest.approx(max(vals))
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["name"] for r in rows} >= {"loss", "lr", "psnr_y"}
    assert [r for r in history if r["kind"] == "train"][0]["loss"] > 0


def test_a_lower_is_better_monitor_keeps_the_lowest_score_and_feeds_the_plateau(tmp_path):
    """The descanning table picks best.pt by the competition's Y-MAE (lower is better): best.pt
    holds the step of the lowest score, and a rising error counts as no progress."""
    trainer = _trainer(tmp_path, 24, monitor="y_mae", scheduler="plateau", gamma=0.5, patience=2)
    errors = iter([5.0, 3.0, 4.0, 4.5, 2.0, 6.0])  # validations at steps 4, 8, ..., 24
    trainer.validate = lambda net: {"y_mae": next(errors)}
    history = trainer.fit()
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert (best["step"], best["best"]) == (20, 2.0)
    lrs = {r["step"]: r["lr"] for r in history if r["kind"] == "train"}
    assert lrs[16] == pytest.approx(1e-3) and lrs[18] == pytest.approx(5e-4)  # cut after 4.0, 4.5


def test_loss_goes_down(tmp_path):
    trainer = _trainer(None, 30)
    history = trainer.fit()
    losses = [r["loss"] for r in history if r["kind"] == "train"]
    assert losses[-1] < losses[0]


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic({"step": 2, "bad": Unpicklable()}, path)
    assert torch.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_bf16_autocast_runs_on_cpu():
    trainer = _trainer(None, 3, amp="bf16", channels_last=True)
    assert trainer.amp_dtype == torch.bfloat16
    history = trainer.fit()
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in history if r["kind"] == "train")


@pytest.mark.parametrize("scheduler", ["constant", "cosine", "multistep"])
def test_schedules(scheduler):
    trainer = _trainer(None, 10, scheduler=scheduler, milestones=(5,), warmup_steps=2)
    factors = [trainer._lr_factor(s) for s in range(10)]
    assert factors[0] == pytest.approx(0.5)  # warm-up
    if scheduler == "cosine":
        assert factors[9] < factors[3]
    if scheduler == "multistep":
        assert factors[6] == pytest.approx(0.5)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="optimizer"):
        _trainer(None, 2, optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        TrainConfig.from_dict({"stepz": 3})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "setting",
    [{"amp": "bf16"}, {"amp": "fp16"}, {"amp": "bf16", "channels_last": True}, {"compile": True}],
)
def test_cuda_paths(setting, tmp_path):
    trainer = _trainer(tmp_path, 4, device="cuda", **setting)
    history = trainer.fit()
    assert trainer.scaler.is_enabled() == (setting.get("amp") == "fp16")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in history if r["kind"] == "train")
    resumed = _trainer(tmp_path, 6, device="cuda", **setting)
    resumed.fit(resume=True)  # a CUDA checkpoint (with CUDA RNG state) resumes
    assert resumed.step == 6


PHASES = ((0, 8, 4), (3, 12, 2), (6, 16, 1))  # patches grow, batches shrink


def test_progressive_learning_resumes_exactly_across_the_switches(tmp_path):
    straight = _trainer(tmp_path / "straight", 8, progressive=PHASES)
    history = straight.fit()
    seen = [(r["step"], r["patch"], r["batch"]) for r in history if r["kind"] == "train"]
    assert seen == [(2, 8, 4), (4, 12, 2), (6, 12, 2), (8, 16, 1)]  # the step just taken
    first = _trainer(tmp_path / "split", 8, progressive=PHASES)
    first.fit(stop_at=5)  # stopped inside the second phase
    second = _trainer(tmp_path / "split", 8, progressive=PHASES)
    second.fit(resume=True)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="progressive"):  # another schedule is another run
        _trainer(tmp_path / "split", 9, progressive=((0, 8, 4), (2, 16, 1))).fit(resume=True)


def test_progressive_batches_are_cut_from_the_loaders_batch():
    from restorelab.train.sampling import progressive_batch

    batch = torch.rand(4, 3, 16, 16)
    cut = progressive_batch((batch, batch + 1), PHASES, 3)
    assert [tuple(t.shape) for t in cut] == [(2, 3, 12, 12)] * 2
    assert torch.equal(cut[0], batch[:2, :, :12, :12])
    with pytest.raises(ValueError, match="at least 16 pixels"):
        progressive_batch(torch.rand(4, 3, 12, 12), PHASES, 6)


def test_progressive_schedule_is_checked():
    with pytest.raises(ValueError, match="largest batch"):
        TrainConfig(batch_size=8, progressive=PHASES)
    with pytest.raises(ValueError, match="step 0"):
        TrainConfig(batch_size=4, progressive=((1, 8, 4),))
    with pytest.raises(ValueError, match="increasing"):
        TrainConfig(batch_size=4, progressive=((0, 8, 4), (0, 12, 2)))


# ReduceLROnPlateau (chapter 8) -----------------------------------------------------------------


def _plateau_trainer(out_dir, steps):
    trainer = _trainer(out_dir, steps, scheduler="plateau", gamma=0.5, patience=3)
    trainer.validate = lambda net: {"psnr_y": 1.0}  # no progress after the first validation
    return trainer


def test_plateau_halves_the_lr_after_three_validations_without_progress():
    from restorelab.train.config import Plateau

    plateau = Plateau(gamma=0.5, patience=3)
    cuts = [plateau.step(score) for score in (1.0, 2.0, 2.0, 1.5, 2.0, 2.5, 2.4, 2.4, 2.4)]
    assert cuts == [False, False, False, False, True, False, False, False, True]
    assert plateau.scale == 0.25
    with pytest.raises(ValueError, match="gamma"):
        Plateau(gamma=1.5)


def test_plateau_cuts_the_lr_at_the_right_steps_and_resumes_exactly(tmp_path):
    straight = _plateau_trainer(tmp_path / "straight", 40)
    straight.fit()
    lrs = {r["step"]: r["lr"] for r in straight.history if r["kind"] == "train"}
    # validations every 4 steps, all equal: cuts after the 4th, 7th and 10th (steps 16, 28, 40)
    assert lrs[16] == pytest.approx(1e-3) and lrs[18] == pytest.approx(5e-4)
    assert lrs[28] == pytest.approx(5e-4) and lrs[30] == pytest.approx(2.5e-4)
    first = _plateau_trainer(tmp_path / "split", 40)
    first.fit(stop_at=22)  # between two cuts: the count of bad validations matters
    second = _plateau_trainer(tmp_path / "split", 40)
    second.fit(resume=True)
    assert second.plateau.state_dict() == straight.plateau.state_dict()
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(second.history) == strip(straight.history)


def test_checkpoints_from_before_the_plateau_option_still_resume(tmp_path):
    _trainer(tmp_path, 4).fit()
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    for added in ("patience", "comet"):
        del state["config"][added]
    del state["plateau"]
    save_atomic(state, tmp_path / "last.pt")
    resumed = _trainer(tmp_path, 6)
    resumed.fit(resume=True)
    assert resumed.step == 6


# Comet (chapter 8) -----------------------------------------------------------------------------


def test_comet_is_off_by_default_and_logs_offline_when_asked(tmp_path):
    import json
    import zipfile

    _trainer(tmp_path / "plain", 4).fit()
    assert not (tmp_path / "plain" / "comet").exists()
    pytest.importorskip("comet_ml")
    trainer = _trainer(tmp_path / "run", 4, comet={"offline": True, "project_name": "ch08"})
    history = trainer.fit()
    archives = list((tmp_path / "run" / "comet").glob("*.zip"))
    assert len(archives) == 1
    with zipfile.ZipFile(archives[0]) as archive:
        lines = archive.read("messages.json").decode().splitlines()
    metrics = [json.loads(line)["payload"]["metric"] for line in lines if '"metric_msg"' in line]
    logged = {(m["metricName"], m["step"]): float(m["metricValue"]) for m in metrics}
    for row in history:
        if row["kind"] == "train":
            assert logged[("train_loss", row["step"])] == pytest.approx(row["loss"])
        if row["kind"] == "val":
            assert logged[("val_psnr_y", row["step"])] == pytest.approx(row["psnr_y"])
    assert (tmp_path / "run" / "log.csv").exists() and (tmp_path / "run" / "tensorboard").exists()
