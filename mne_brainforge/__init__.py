"""mne-brainforge: deep-learning EEG source imaging for MNE-Python."""

__version__ = "0.1.0.dev0"

from . import datasets
from .head import make_fsaverage_forward

__all__ = ["__version__", "datasets", "make_fsaverage_forward"]
