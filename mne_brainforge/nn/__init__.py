"""Network stage: scalp-map operator, CNN-Transformer, and the applied model."""

from .model import BrainForgeModel
from .network import BrainForgeNet
from .topomap import METHODS as TOPOMAP_METHODS
from .topomap import azimuthal_equidistant, topomap_matrix

__all__ = [
    "BrainForgeModel",
    "BrainForgeNet",
    "TOPOMAP_METHODS",
    "azimuthal_equidistant",
    "topomap_matrix",
]
