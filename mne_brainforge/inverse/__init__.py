"""Inverse stage: apply a BrainForge model to MNE data."""

from .apply import (
    apply_brainforge_inverse,
    apply_brainforge_inverse_epochs,
    apply_brainforge_inverse_raw,
)
from .compare import compare_inverse_methods, plot_inverse_comparison

__all__ = [
    "apply_brainforge_inverse",
    "apply_brainforge_inverse_epochs",
    "apply_brainforge_inverse_raw",
    "compare_inverse_methods",
    "plot_inverse_comparison",
]
