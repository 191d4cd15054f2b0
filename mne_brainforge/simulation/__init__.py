"""Simulation stage: TVB waveforms, source patches and on-the-fly EEG for any forward.

The expensive neural-mass part (:func:`build_waveform_library`) is independent of
the head model and cached once (a few MB); patches, projection through a forward
model, noise and domain randomisation happen on the fly
(:class:`EEGSimulator`, :class:`SyntheticEEGDataset`), or a whole batch at once
in torch on CPU or CUDA (:class:`BatchedEEGGenerator`, hundreds of times faster).
"""

from .dataset import EEGSimulator, SyntheticEEGDataset
from .engine import PROFILES, REFERENCES, SOURCE_KINDS, BatchedEEGGenerator, seed_for
from .library import (
    WaveformLibrary,
    build_waveform_library,
    fetch_waveform_library,
    read_waveform_library,
)
from .neural_mass import load_connectivity, simulate_jansen_rit, simulate_regimes
from .patches import Patch, grow_patch, random_patches
from .spikes import extract_background, extract_spikes
from .synthesis import NOISE_KINDS, add_noise_at_snr, make_noise, measured_snr
from .waveforms import (
    WAVEFORM_FAMILIES,
    WaveformBank,
    fetch_waveform_bank,
    make_waveform_bank,
)

__all__ = [
    "PROFILES",
    "REFERENCES",
    "SOURCE_KINDS",
    "WAVEFORM_FAMILIES",
    "BatchedEEGGenerator",
    "WaveformBank",
    "fetch_waveform_bank",
    "make_waveform_bank",
    "seed_for",
    "EEGSimulator",
    "NOISE_KINDS",
    "Patch",
    "SyntheticEEGDataset",
    "WaveformLibrary",
    "add_noise_at_snr",
    "build_waveform_library",
    "extract_background",
    "extract_spikes",
    "fetch_waveform_library",
    "grow_patch",
    "load_connectivity",
    "make_noise",
    "measured_snr",
    "random_patches",
    "read_waveform_library",
    "simulate_jansen_rit",
    "simulate_regimes",
]
