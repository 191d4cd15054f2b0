"""Figures: the one cortex renderer (MNE's 3D viewer, headless) and simulation views."""

from ._display import ensure_3d_display, save_screenshot
from .cortex import energy_estimate, plot_source_maps, render_cortex
from .simulation import plot_simulation

__all__ = [
    "energy_estimate",
    "ensure_3d_display",
    "plot_simulation",
    "plot_source_maps",
    "render_cortex",
    "save_screenshot",
]
