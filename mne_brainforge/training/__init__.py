"""Training stage: losses and ``train_model`` for any forward model."""

from .loop import train_model
from .losses import BrainForgeLoss

__all__ = ["BrainForgeLoss", "train_model"]
