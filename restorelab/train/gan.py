"""Adversarial training: :class:`GANTrainer`, the :class:`Trainer` with a discriminator.

Taught in chapter 7 (GAN / ESRGAN). The GAN trainer *is* a Trainer (same seeding, step-indexed
data, AMP, checkpoints, run-folder rules, logs, validation, progress bar); it adds:

* a discriminator with its own optimizer and LR schedule (``GANConfig.discriminator`` overrides
  the generator's :class:`TrainConfig` fields for it, e.g. ``{"lr": 4e-4}``) and its own
  gradient scaler;
* one batch per step: the discriminator takes one update on every step, the generator one on
  every ``d_steps``-th step (BasicSR's ``net_d_iters``), with the content loss (``loss_fn``, e.g.
  L1 + perceptual) plus ``adversarial_weight`` times the generator side of the GAN loss
  (:data:`restorelab.losses.GAN_LOSSES`; WGAN-GP adds the gradient penalty to the critic);
* an optional exponential moving average (EMA) of the generator, which validation then uses;
* logged per step (averaged over ``log_every``): ``d_loss``, ``d_real`` and ``d_fake`` (the
  discriminator's mean logit on real and fake images), ``d_grad_norm``, and on generator steps
  ``g_loss``, ``g_content``, ``g_adversarial``, ``g_grad_norm``; both learning rates;
* exact resume of both networks, both optimizers, schedules and scalers, and the EMA.

:func:`interpolate_weights` blends a PSNR-trained and a GAN-trained state dict (ESRGAN's
network interpolation).
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

from restorelab import distributed
from restorelab.losses import gan_loss, gradient_penalty
from restorelab.train.config import TrainConfig, lr_factor
from restorelab.train.sampling import step_generator
from restorelab.train.trainer import (
    Batch,
    MakePair,
    Trainer,
    Validate,
    follow_schedule,
    make_optimizer,
)

ContentLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class GANConfig:
    """The adversarial settings of a run (saved in the checkpoint's ``config.extra["gan"]``).

    ``loss``: a name of :data:`restorelab.losses.GAN_LOSSES`. ``adversarial_weight``: the GAN
    term's weight in the generator's loss (ESRGAN: 5e-3 beside 1e-2 L1 and 1 perceptual).
    ``d_steps``: discriminator updates per generator update. ``gp_weight``: WGAN-GP's penalty
    weight. ``ema_decay``: 0 for no EMA, else e.g. 0.999. ``discriminator``: TrainConfig fields
    that differ for the discriminator's optimizer and schedule (the rest as the generator's).
    """

    loss: str = "ragan"
    adversarial_weight: float = 5e-3
    d_steps: int = 1
    gp_weight: float = 10.0
    ema_decay: float = 0.0
    discriminator: dict = field(default_factory=dict)


def no_content_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A content loss of zero: the generator learns from the discriminator alone."""
    return output.new_zeros(())


class GANTrainer(Trainer):
    """Train ``generator`` against ``discriminator``; see the module docstring.

    Arguments as :class:`Trainer` (``loss_fn``: the content loss on (output, target), None for
    none), plus ``discriminator`` ((N, C, H, W) -> logits (N, 1)) and ``gan``. ``make_pair``
    turns a batch into (generator input, real sample): for super-resolution (LR, HR).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        train_set: Dataset,
        loss_fn: ContentLoss | None = None,
        config: TrainConfig | None = None,
        gan: GANConfig | None = None,
        make_pair: MakePair | None = None,
        validate: Validate | None = None,
        out_dir: str | None = None,
        check: Callable[[nn.Module], object] | None = None,
    ) -> None:
        self.gan = gan or GANConfig()
        self.losses = gan_loss(self.gan.loss)
        if self.gan.d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {self.gan.d_steps}")
        if distributed.active():
            raise NotImplementedError(
                "GANTrainer runs in one process: several GPUs (torchrun) are not supported yet"
            )
        config = config or TrainConfig()
        config.extra = {**config.extra, "gan": asdict(self.gan)}
        super().__init__(generator, train_set, loss_fn or no_content_loss, config, make_pair,
                         validate, out_dir, check)  # fmt: skip
        self.d_config = TrainConfig.from_dict({**asdict(self.config), **self.gan.discriminator})
        self.discriminator = discriminator.to(self.device)
        self.d_optimizer = make_optimizer(self.d_config, self.discriminator.parameters())
        self.d_scheduler = torch.optim.lr_scheduler.LambdaLR(self.d_optimizer, self._d_lr_factor)
        self.d_scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.ema: nn.Module | None = None
        if self.gan.ema_decay:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)

    def _d_lr_factor(self, step: int) -> float:
        return lr_factor(self.d_config, step)

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "d_scheduler": self.d_scheduler.state_dict(),
            "d_scaler": self.d_scaler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.d_scheduler.load_state_dict(state["d_scheduler"])
        self.d_scaler.load_state_dict(state["d_scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        super().load_state_dict(state)

    def _follow_new_schedule(self, steps_before: int) -> None:
        super()._follow_new_schedule(steps_before)
        follow_schedule(self.d_optimizer, self.d_scheduler, self._d_lr_factor(self.step))

    # ----------------------------------------------------------------- train
    def evaluated_model(self) -> nn.Module:
        return self.model if self.ema is None else self.ema

    def learning_rates(self) -> dict[str, float]:
        return {**super().learning_rates(), "d_lr": self.d_scheduler.get_last_lr()[0]}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        )

    def _update(
        self,
        loss: torch.Tensor,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        clip: float,
    ) -> float:
        """Backward, (clip), step; returns the gradient norm before clipping."""
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        norm = nn.utils.clip_grad_norm_(network.parameters(), clip or math.inf)
        scaler.step(optimizer)
        scaler.update()
        return float(norm)

    def _generator_step(
        self, inputs: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One generator update; returns its output (detached) and what it logs."""
        discriminator = self.discriminator.requires_grad_(False)
        try:
            with self._autocast():
                output = self.forward(inputs)
                fake = discriminator(output)
                # only RaGAN's generator side reads the real logits
                real = discriminator(target) if self.gan.loss == "ragan" else fake.detach()
            output = output.float()
            content = self.loss_fn(output, target.float())
            adversarial = self.losses.generator(real.float(), fake.float())
            loss = content + self.gan.adversarial_weight * adversarial
            norm = self._update(loss, self.model, self.optimizer, self.scaler,
                                self.config.grad_clip)  # fmt: skip
        finally:
            discriminator.requires_grad_(True)
        if self.ema is not None:
            _update_ema(self.ema, self.model, self.gan.ema_decay)
        return output.detach(), {
            "g_loss": float(loss.detach()),
            "g_content": float(content.detach()),
            "g_adversarial": float(adversarial.detach()),
            "g_grad_norm": norm,
        }

    def _discriminator_step(self, fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        with self._autocast():
            real_logits = self.discriminator(target).float()
            fake_logits = self.discriminator(fake).float()
        loss = self.losses.discriminator(real_logits, fake_logits)
        metrics = {}
        if self.gan.loss == "wgan-gp":
            # the mixing weights of step s: a stream of its own, so resumes draw the same ones
            mix = step_generator(self.config.seed + 1, self.step, self.device)
            penalty = gradient_penalty(self.discriminator, target.float(), fake.float(), mix)
            loss = loss + self.gan.gp_weight * penalty
            metrics["d_penalty"] = float(penalty.detach())
        norm = self._update(loss, self.discriminator, self.d_optimizer, self.d_scaler,
                            self.d_config.grad_clip)  # fmt: skip
        return {
            "d_loss": float(loss.detach()),
            "d_real": float(real_logits.detach().mean()),
            "d_fake": float(fake_logits.detach().mean()),
            "d_grad_norm": norm,
            **metrics,
        }

    def step_metrics(self, batch: Batch) -> dict[str, float]:
        """One step: a generator update on every ``d_steps``-th step, a discriminator update on
        every step (on the generator's output before its update, as BasicSR does)."""
        inputs, target = self.pair(batch)
        metrics: dict[str, float] = {}
        if (self.step + 1) % self.gan.d_steps == 0:
            fake, metrics = self._generator_step(inputs, target)
        else:
            with torch.no_grad(), self._autocast():
                fake = self.forward(inputs).float()
        metrics = {**self._discriminator_step(fake, target), **metrics}
        with warnings.catch_warnings():  # the schedule follows the step, updated or not
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
            self.scheduler.step()
        self.d_scheduler.step()
        self.step += 1
        return metrics


def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for the weights; buffers copied."""
    with torch.no_grad():
        for mine, theirs in zip(ema.parameters(), model.parameters(), strict=True):
            mine.lerp_(theirs, 1 - decay)
        for mine, theirs in zip(ema.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)


def interpolate_weights(
    psnr_state: Mapping[str, torch.Tensor], gan_state: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """ESRGAN's network interpolation: ``(1 - alpha) * psnr + alpha * gan``, weight by weight.

    Both state dicts must come from the same architecture. ``alpha`` in [0, 1]: 0 gives the
    PSNR-trained network, 1 the GAN-trained one. Integer buffers (batch-norm step counts) are
    taken from the GAN network.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if set(psnr_state) != set(gan_state):
        differ = sorted(set(psnr_state) ^ set(gan_state))
        raise ValueError(f"the two networks differ in their weights: {differ[:5]}")
    blended = {}
    for name, gan_value in gan_state.items():
        psnr_value = psnr_state[name]
        if psnr_value.shape != gan_value.shape:
            raise ValueError(
                f"{name}: shape {tuple(psnr_value.shape)} vs {tuple(gan_value.shape)}: "
                "interpolate networks of the same architecture"
            )
        if gan_value.is_floating_point():
            blended[name] = torch.lerp(psnr_value.to(gan_value.dtype), gan_value, alpha)
        else:
            blended[name] = gan_value.clone()
    return blended
