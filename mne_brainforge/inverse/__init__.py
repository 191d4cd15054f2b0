"""Inverse stage: apply a BrainForge model to MNE data."""

from .apply import apply_brainforge_inverse

__all__ = ["apply_brainforge_inverse"]
