"""Head model stage: the offline fsaverage template, montages and forward models.

Owns everything about the head: the template (surfaces, BEM, source space), the
forward models for any montage and the cortex-normal gain, the montage builder,
electrode jitter, source depths, and the source-space graph and parcellation.
"""

from .deep import (
    DEEP_SPACING,
    DEEP_STRUCTURES,
    deep_source_positions,
    make_deep_source_space,
)
from .family import (
    CAP_CHANNELS,
    CAP_MONTAGES,
    DEFAULT_HEADS,
    SUPERSET_MONTAGE,
    ChannelSet,
    HeadModelFamily,
    geodesic_neighbourhoods,
    make_head_model_family,
)
from .fitting import fit_montage_to_template
from .forward import (
    check_eeg_positions,
    cortex_normal,
    fixed_orientation_gain,
    make_fsaverage_forward,
    source_gain,
)
from .montage import jitter_electrodes, make_montage_info
from .parcellation import Parcellation, parcellate_source_space, source_graph
from .template import (
    fetch_fsaverage,
    fsaverage_trans_path,
    make_fsaverage_bem_solution,
    read_fsaverage_source_space,
    source_depths,
)

__all__ = [
    "DEEP_SPACING",
    "DEEP_STRUCTURES",
    "CAP_CHANNELS",
    "CAP_MONTAGES",
    "DEFAULT_HEADS",
    "SUPERSET_MONTAGE",
    "ChannelSet",
    "HeadModelFamily",
    "Parcellation",
    "geodesic_neighbourhoods",
    "make_head_model_family",
    "check_eeg_positions",
    "cortex_normal",
    "deep_source_positions",
    "fetch_fsaverage",
    "fit_montage_to_template",
    "fixed_orientation_gain",
    "fsaverage_trans_path",
    "jitter_electrodes",
    "make_deep_source_space",
    "make_fsaverage_bem_solution",
    "make_fsaverage_forward",
    "make_montage_info",
    "parcellate_source_space",
    "read_fsaverage_source_space",
    "source_depths",
    "source_gain",
    "source_graph",
]
