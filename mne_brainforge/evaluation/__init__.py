"""Evaluation stage: accuracy metrics and the benchmark against MNE's inverses."""

from . import metrics

__all__ = ["metrics"]
