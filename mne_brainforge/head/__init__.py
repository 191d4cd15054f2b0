"""Head model stage: the offline fsaverage template and its forward models."""

from .forward import check_eeg_positions, make_fsaverage_forward
from .template import (
    fetch_fsaverage,
    fsaverage_trans_path,
    make_fsaverage_bem_solution,
    read_fsaverage_source_space,
)

__all__ = [
    "check_eeg_positions",
    "fetch_fsaverage",
    "fsaverage_trans_path",
    "make_fsaverage_bem_solution",
    "make_fsaverage_forward",
    "read_fsaverage_source_space",
]
