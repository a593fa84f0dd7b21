"""Training: the :class:`Trainer` every chapter uses, its config and its checkpoints.

Taught in chapter 1 (several GPUs with torchrun: the appendix). ``trainer`` holds the loop,
``config`` the :class:`TrainConfig` and its LR schedule, ``sampling`` the step-indexed sampler
that makes runs resumable and shardable, ``checkpoint`` atomic saves, safe loads and the rules
that keep a run folder from being overwritten; ``gan`` the :class:`GANTrainer` (chapter 7);
``comet`` the optional Comet logger (chapter 8).
"""

from restorelab.train.checkpoint import load_weights, read_checkpoint, save_atomic
from restorelab.train.config import TrainConfig, amp_dtype, fast_settings, seed_everything
from restorelab.train.gan import GANConfig, GANTrainer, interpolate_weights
from restorelab.train.sampling import StepSampler
from restorelab.train.trainer import Trainer, TrainingDiverged

__all__ = [
    "GANConfig",
    "GANTrainer",
    "StepSampler",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "amp_dtype",
    "fast_settings",
    "interpolate_weights",
    "load_weights",
    "read_checkpoint",
    "save_atomic",
    "seed_everything",
]
