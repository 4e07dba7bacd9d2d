"""Training: losses (derivative, acceleration, k-step rollout), :func:`fit`, checkpoints, seed
ensembles (:func:`fit_ensemble`)."""

from __future__ import annotations

from ..datasets import TrainingData, as_training_data, finite_difference
from .checkpoint import CHECKPOINT_NAME, checkpoint_path, load_checkpoint, save_checkpoint
from .ensemble import EnsembleResult, fit_ensemble
from .fit import OPTIMIZERS, SCHEDULES, FitResult, fit, seed_everything
from .losses import LOSSES, acceleration_loss, derivative_loss, rollout_loss

__all__ = [
    "CHECKPOINT_NAME",
    "EnsembleResult",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "FitResult",
    "TrainingData",
    "acceleration_loss",
    "as_training_data",
    "checkpoint_path",
    "derivative_loss",
    "finite_difference",
    "fit",
    "fit_ensemble",
    "load_checkpoint",
    "rollout_loss",
    "save_checkpoint",
    "seed_everything",
]
