"""Training stage: ``train_model`` (per-window simulator) and ``train_prior`` (batched engine)."""

from .loop import train_model
from .losses import BrainForgeLoss
from .prior import prior_loss, region_targets, train_prior

__all__ = [
    "BrainForgeLoss",
    "prior_loss",
    "region_targets",
    "train_model",
    "train_prior",
]
