"""Metrics stage: how close an estimate is to the simulated truth."""

from .maps import average_precision, earth_movers_distance, peak_localization_error
from .scores import (
    GroundTruth,
    auc,
    energy_map,
    evaluate,
    local_maxima,
    localization_error,
    nmse,
    otsu_threshold,
    region_precision_recall,
    source_positions,
    spatial_dispersion,
    temporal_correlation,
)

__all__ = [
    "GroundTruth",
    "auc",
    "average_precision",
    "earth_movers_distance",
    "energy_map",
    "evaluate",
    "local_maxima",
    "localization_error",
    "nmse",
    "otsu_threshold",
    "peak_localization_error",
    "region_precision_recall",
    "source_positions",
    "spatial_dispersion",
    "temporal_correlation",
]
