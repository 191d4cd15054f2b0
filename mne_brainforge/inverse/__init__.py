"""Inverse stage: BrainForge (network prior + sparse Bayesian solve), baselines, comparisons."""

from .apply import (
    apply_brainforge_inverse,
    apply_brainforge_inverse_epochs,
    apply_brainforge_inverse_raw,
)
from .classical import (
    CLASSICAL,
    SPARSE,
    GammaMap,
    MixedNorm,
    MNEInverse,
    make_method,
)
from .compare import compare_inverse_methods, plot_inverse_comparison
from .sparse_bayes import (
    PATCH_WIDTHS,
    SparseBayes,
    apply_sparse_bayes,
    prepare_sparse_bayes,
    sparse_bayes_solve,
)

__all__ = [
    "CLASSICAL",
    "SPARSE",
    "GammaMap",
    "MNEInverse",
    "MixedNorm",
    "PATCH_WIDTHS",
    "SparseBayes",
    "apply_brainforge_inverse",
    "apply_brainforge_inverse_epochs",
    "apply_brainforge_inverse_raw",
    "apply_sparse_bayes",
    "compare_inverse_methods",
    "make_method",
    "plot_inverse_comparison",
    "prepare_sparse_bayes",
    "sparse_bayes_solve",
]
