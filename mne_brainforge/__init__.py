"""mne-brainforge: deep-learning EEG source imaging for MNE-Python."""

__version__ = "0.1.0.dev0"

from . import datasets
from .head import make_fsaverage_forward
from .weights import fetch_weights, list_weights, load_pretrained

__all__ = [
    "__version__",
    "datasets",
    "fetch_weights",
    "list_weights",
    "load_pretrained",
    "make_fsaverage_forward",
]
