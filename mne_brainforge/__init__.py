"""mne-brainforge: deep-learning EEG source imaging for MNE-Python."""

import importlib

from . import datasets
from ._version import __version__
from .head import fit_montage_to_template, make_fsaverage_forward
from .inverse import (
    apply_brainforge_inverse,
    apply_brainforge_inverse_epochs,
    apply_brainforge_inverse_raw,
    apply_sparse_bayes,
    compare_inverse_methods,
    plot_inverse_comparison,
)
from .nn import BrainForgeModel
from .training import train_model
from .weights import fetch_weights, list_weights, load_pretrained

__all__ = [
    "BrainForgeModel",
    "__version__",
    "apply_brainforge_inverse",
    "apply_brainforge_inverse_epochs",
    "apply_brainforge_inverse_raw",
    "apply_sparse_bayes",
    "compare_inverse_methods",
    "datasets",
    "fetch_weights",
    "fit_montage_to_template",
    "list_weights",
    "load_pretrained",
    "make_fsaverage_forward",
    "plot_inverse_comparison",
    "train_model",
]

#: Sub-packages reachable as ``bf.<name>`` after ``import mne_brainforge as bf``
#: (imported on first use: viz needs no 3D stack unless used).
_SUBPACKAGES = (
    "evaluation",
    "head",
    "inverse",
    "metrics",
    "nn",
    "simulation",
    "training",
    "utils",
    "viz",
    "weights",
)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
