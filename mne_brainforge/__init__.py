"""mne-brainforge: deep-learning EEG source imaging for MNE-Python."""

from . import datasets
from ._version import __version__
from .head import make_fsaverage_forward
from .inverse import (
    apply_brainforge_inverse,
    apply_brainforge_inverse_epochs,
    apply_brainforge_inverse_raw,
    compare_inverse_methods,
    plot_inverse_comparison,
)
from .weights import fetch_weights, list_weights, load_pretrained

__all__ = [
    "__version__",
    "apply_brainforge_inverse",
    "apply_brainforge_inverse_epochs",
    "apply_brainforge_inverse_raw",
    "compare_inverse_methods",
    "datasets",
    "fetch_weights",
    "list_weights",
    "load_pretrained",
    "make_fsaverage_forward",
    "plot_inverse_comparison",
]
