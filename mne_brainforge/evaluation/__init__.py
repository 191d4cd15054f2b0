"""Evaluation stage: accuracy metrics and the benchmark against MNE's inverses."""

__all__ = ["metrics"]
