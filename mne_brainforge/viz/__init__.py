"""Figures: the one cortex renderer (MNE's 3D viewer, headless), glass brains, simulation views."""

from ._display import ensure_3d_display, save_screenshot
from .cortex import energy_estimate, plot_source_maps, render_cortex
from .glass import plot_glass_brain
from .simulation import plot_simulation

__all__ = [
    "energy_estimate",
    "ensure_3d_display",
    "plot_glass_brain",
    "plot_simulation",
    "plot_source_maps",
    "render_cortex",
    "save_screenshot",
]
