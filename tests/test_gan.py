"""The GAN trainer: both players learn from the right losses, the logs, exact resume, and
ESRGAN's network interpolation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restorelab import models
from restorelab.data import GaussianRing, RandomPatches, noise_pair, ring_coverage
from restorelab.losses import l1_loss
from restorelab.tasks import SuperResolution
from restorelab.train import GANConfig, GANTrainer, TrainConfig, interpolate_weights

TASK = SuperResolution(scale=4, channels="rgb", pre_upsample=False)
IMAGES = [torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(2)]


def _sr_trainer(out_dir, steps, gan=None, **overrides):
    """A tiny RRDBNet x4 against a tiny VGG-style discriminator on 32px patches."""
    config = TrainConfig(
        steps=steps, batch_size=2, lr=1e-3, val_every=3, log_every=2, progress=False, seed=5,
        prefetch=0, **overrides,
    )  # fmt: skip
    torch.manual_seed(0)
    generator = models.build("rrdbnet", features=8, growth=4, num_blocks=1)
    discriminator = models.build("vgg_discriminator", features=4)

    def validate(net):
        return {"psnr_y": sum(TASK.evaluate(net, IMAGES[:1])["psnr_y"])}

    gan = gan or GANConfig(loss="ragan", d_steps=2, ema_decay=0.9,
                           discriminator={"lr": 3e-3, "scheduler": "multistep", "milestones": (4,)})  # fmt: skip
    return GANTrainer(generator, discriminator, RandomPatches(IMAGES, 32, seed=5), l1_loss,
                      config, gan, TASK.make_pair, validate, out_dir)  # fmt: skip


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_gan_resume_continues_exactly(tmp_path):
    straight = _sr_trainer(tmp_path / "straight", 6)
    straight.fit()
    first = _sr_trainer(tmp_path / "split", 6)
    first.fit(stop_at=3)  # mid-way between two generator updates (d_steps=2)
    second = _sr_trainer(tmp_path / "split", 6)
    second.fit(resume=True)
    assert second.step == 6
    for name in ("model", "discriminator", "ema"):
        ours, theirs = getattr(straight, name).state_dict(), getattr(second, name).state_dict()
        for key, value in ours.items():
            assert torch.equal(value, theirs[key]), f"{name}.{key}"
    for name in ("optimizer", "d_optimizer"):
        ours, theirs = getattr(straight, name).state_dict(), getattr(second, name).state_dict()
        for index, slots in ours["state"].items():
            for slot, value in slots.items():
                assert torch.equal(value, theirs["state"][index][slot]), f"{name} {index} {slot}"
    assert _strip(second.history) == _strip(straight.history)
    assert (tmp_path / "split" / "log.csv").read_bytes() == (
        tmp_path / "straight" / "log.csv"
    ).read_bytes()


def test_gan_logs_both_players_and_their_schedules(tmp_path):
    trainer = _sr_trainer(tmp_path, 6)
    history = trainer.fit()
    train = [r for r in history if r["kind"] == "train"]
    for name in ("d_loss", "d_real", "d_fake", "d_grad_norm", "g_loss", "g_content",
                 "g_adversarial", "g_grad_norm", "lr", "d_lr"):  # fmt: skip
        assert all(name in row for row in train), name
    assert train[0]["g_loss"] == pytest.approx(
        train[0]["g_content"] + 5e-3 * train[0]["g_adversarial"], rel=1e-5
    )
    assert train[0]["d_lr"] == pytest.approx(3e-3 * trainer._d_lr_factor(1))
    assert trainer.d_scheduler.get_last_lr()[0] == pytest.approx(1.5e-3)  # halved at step 4
    assert [r["step"] for r in history if r["kind"] == "val"] == [3, 6]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"discriminator", "d_optimizer", "d_scheduler", "d_scaler", "ema"} <= set(saved)
    assert saved["config"]["extra"]["gan"]["loss"] == "ragan"


def _unchanged(before: list[torch.Tensor], network: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, network.parameters(), strict=True))


def _weights(network: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in network.parameters()]


def test_each_update_moves_only_its_own_network():
    trainer = _sr_trainer(None, 2)
    batch = next(iter(trainer._loader()))
    g_before, d_before = _weights(trainer.model), _weights(trainer.discriminator)
    metrics = trainer.step_metrics(batch)  # step 1 of d_steps=2: the discriminator only
    assert "g_loss" not in metrics and "d_loss" in metrics
    assert _unchanged(g_before, trainer.model)
    assert not _unchanged(d_before, trainer.discriminator)
    d_before = _weights(trainer.discriminator)
    trainer.d_optimizer.zero_grad(set_to_none=True)
    inputs, target = trainer.pair(batch)
    trainer._generator_step(inputs, target)  # the generator's update alone
    assert not _unchanged(g_before, trainer.model)
    assert _unchanged(d_before, trainer.discriminator)
    assert all(p.grad is None and p.requires_grad for p in trainer.discriminator.parameters())
    ema = dict(trainer.ema.named_parameters())
    for name, weight in trainer.model.named_parameters():  # EMA: between start and now
        start = dict(zip([n for n, _ in trainer.model.named_parameters()], g_before, strict=True))
        assert torch.allclose(ema[name], 0.9 * start[name] + 0.1 * weight), name


def test_a_changed_gan_setting_is_refused_on_resume(tmp_path):
    _sr_trainer(tmp_path, 2).fit()
    other = _sr_trainer(tmp_path, 4, gan=GANConfig(loss="vanilla"))
    with pytest.raises(ValueError, match="gan"):
        other.fit(resume=True)


def test_wgan_gp_resumes_exactly_and_logs_its_penalty(tmp_path):
    gan = GANConfig(loss="wgan-gp", d_steps=1)
    straight = _sr_trainer(tmp_path / "a", 4, gan=gan)
    straight.fit()
    assert all("d_penalty" in r for r in straight.history if r["kind"] == "train")
    _sr_trainer(tmp_path / "b", 4, gan=gan).fit(stop_at=3)
    resumed = _sr_trainer(tmp_path / "b", 4, gan=gan)
    resumed.fit(resume=True)
    for key, value in straight.discriminator.state_dict().items():
        assert torch.equal(value, resumed.discriminator.state_dict()[key]), key


def test_toy_gan_learns_the_ring():
    torch.manual_seed(0)
    ring = GaussianRing(std=0.1, seed=0)
    config = TrainConfig(steps=150, batch_size=128, lr=2e-3, betas=(0.5, 0.999),
                         scheduler="constant", log_every=50, progress=False, prefetch=0,
                         tensorboard=False)  # fmt: skip
    generator = models.build("mlp", hidden=64)
    trainer = GANTrainer(generator, models.build("mlp", hidden=64, out_features=1), ring, None,
                         config, GANConfig(loss="lsgan", adversarial_weight=1.0),
                         make_pair=noise_pair(2))  # fmt: skip
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    before = ring_coverage(generator(noise).detach(), ring)
    trainer.fit()
    after = ring_coverage(generator(noise).detach(), ring)
    assert after["on_ring"] > before["on_ring"] + 0.05


def test_interpolation_blends_weights():
    torch.manual_seed(0)
    psnr, gan = (models.build("vgg_discriminator", features=4).state_dict() for _ in range(2))
    gan = {k: v + 1 if v.is_floating_point() else v + 3 for k, v in gan.items()}
    for alpha in (0.0, 0.25, 1.0):
        blended = interpolate_weights(psnr, gan, alpha)
        for key, value in blended.items():
            if value.is_floating_point():
                assert torch.allclose(value, psnr[key] + alpha * (gan[key] - psnr[key]))
            else:  # batch-norm counters come from the GAN network
                assert torch.equal(value, gan[key])
    net = models.build("rrdbnet", features=8, growth=4, num_blocks=1)
    net.load_state_dict(interpolate_weights(net.state_dict(), net.state_dict(), 0.8))
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(psnr, gan, 1.5)
    with pytest.raises(ValueError, match="shape"):
        interpolate_weights(psnr, models.build("vgg_discriminator", features=8).state_dict(), 0.5)


def test_bad_gan_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        _sr_trainer(None, 2, gan=GANConfig(loss="hinge"))
    with pytest.raises(ValueError, match="d_steps"):
        _sr_trainer(None, 2, gan=GANConfig(d_steps=0))
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        _sr_trainer(None, 2, gan=GANConfig(discriminator={"learning_rate": 1.0}))
    assert F.l1_loss is not None
