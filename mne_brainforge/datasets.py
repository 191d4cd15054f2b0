"""Data that mne-brainforge provides: the offline fsaverage template head."""

from .head.template import (
    fetch_fsaverage,
    fsaverage_trans_path,
    make_fsaverage_bem_solution,
    read_fsaverage_source_space,
)
from .utils import get_data_path

__all__ = [
    "fetch_fsaverage",
    "fsaverage_trans_path",
    "get_data_path",
    "make_fsaverage_bem_solution",
    "read_fsaverage_source_space",
]
