"""Resampling by a rational factor: one helper for every whole-array resample."""

from fractions import Fraction

import mne
import numpy as np


def rational_ratio(sfreq_from, sfreq_to, max_denominator=1000):
    """``(up, down)`` with ``sfreq_from * up / down == sfreq_to``, small integers.

    Raises a clear error when the rates are not a ratio of small integers (a
    polyphase filter would then be huge or inexact).
    """
    ratio = Fraction(float(sfreq_to) / float(sfreq_from)).limit_denominator(
        max_denominator
    )
    if abs(float(ratio) * sfreq_from - sfreq_to) > 1e-6 * sfreq_to:
        raise ValueError(
            f"Resampling from {sfreq_from} Hz to {sfreq_to} Hz needs a ratio of small "
            f"integers (up to {max_denominator}); resample the data first "
            "(e.g. inst.resample) to a rate that is."
        )
    return ratio.numerator, ratio.denominator


def resample(x, sfreq_from, sfreq_to):
    """Resample ``x`` along its last axis with MNE's polyphase anti-aliasing filter."""
    x = np.asarray(x, np.float64)
    if np.isclose(sfreq_from, sfreq_to):
        return x
    up, down = rational_ratio(sfreq_from, sfreq_to)
    return mne.filter.resample(x, up, down, method="polyphase", verbose=False)
