"""Inverse stage: BrainForge applied to MNE data, the classical baselines, comparisons."""

from .apply import (
    apply_brainforge_inverse,
    apply_brainforge_inverse_epochs,
    apply_brainforge_inverse_raw,
)
from .classical import CLASSICAL, MNEInverse
from .compare import compare_inverse_methods, plot_inverse_comparison

__all__ = [
    "CLASSICAL",
    "MNEInverse",
    "apply_brainforge_inverse",
    "apply_brainforge_inverse_epochs",
    "apply_brainforge_inverse_raw",
    "compare_inverse_methods",
    "plot_inverse_comparison",
]
