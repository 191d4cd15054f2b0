"""Argument checks: MNE's validators plus the few numeric checks MNE lacks.

Every public function checks its arguments with these, so a user sees the same
clear one-line message for the same mistake wherever it is made.
"""

import operator

import numpy as np
from mne.utils import _check_option, _validate_type

__all__ = ["check_int", "check_number", "check_option", "check_type"]

check_option = _check_option
check_type = _validate_type


def check_int(value, name, minimum=None):
    """Return ``value`` as an int, refusing bools, floats and values below ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return value


def check_number(
    value, name, *, minimum=None, strict=False, maximum=None, allow_none=False
):
    """Return ``value`` as a finite float, optionally ``>= minimum`` (``>`` if strict).

    ``maximum`` (inclusive) bounds it from above.
    """
    if value is None and allow_none:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    bad = not np.isfinite(value)
    if minimum is not None:
        bad |= value <= minimum if strict else value < minimum
    if maximum is not None:
        bad |= value > maximum
    if bad:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
        bound += "" if maximum is None else f"{' and' if bound else ''} <= {maximum}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value}.")
    return value
