"""Training: the :class:`Trainer` every chapter uses, its config and its checkpoints.

Taught in chapter 1 (several GPUs with torchrun: the appendix). ``trainer`` holds the loop,
``config`` the :class:`TrainConfig` and its LR schedule, ``sampling`` the step-indexed sampler
that makes runs resumable and shardable, ``checkpoint`` atomic saves, safe loads and the rules
that keep a run folder from being overwritten.
"""

from restorelab.train.checkpoint import load_weights, read_checkpoint, save_atomic
from restorelab.train.config import TrainConfig, amp_dtype, seed_everything
from restorelab.train.sampling import StepSampler
from restorelab.train.trainer import Trainer

__all__ = [
    "StepSampler",
    "TrainConfig",
    "Trainer",
    "amp_dtype",
    "load_weights",
    "read_checkpoint",
    "save_atomic",
    "seed_everything",
]
