"""The cortex-normal EEG gain of a forward, converted once per forward object."""

import hashlib
import weakref

import numpy as np

from ..head.forward import source_gain

#: id(forward) -> (fingerprint, gain, channel names) of the forwards still alive
_FIXED_GAINS = {}


def _fingerprint(forward):
    """Cheap identity of a forward's gains: changed if they are modified in place.

    Both the gain and the original one that MNE converts orientations from.
    """
    key = [forward["source_ori"], forward["surf_ori"]]
    for data in (forward["sol"]["data"], forward.get("_orig_sol")):
        if data is not None:
            # a strided view, copied only where sampled (ravel copied a whole
            # non-contiguous gain: 35 ms for fsaverage)
            rows, cols = data.shape
            sample = np.ascontiguousarray(
                data[:: max(1, rows // 16), :: max(1, cols // 256)]
            )
            key += [id(data), data.shape, hashlib.blake2b(sample.tobytes()).hexdigest()]
    return tuple(key)


def _fixed_gain(forward):
    """EEG gain of fixed dipoles, converted once per forward object.

    Cortex-normal dipoles for the cortex, x/y/z dipoles for the deep sources of
    a mixed forward (:func:`~mne_brainforge.head.forward.source_gain`).

    :func:`mne.convert_forward_solution` copies the whole forward (about 0.3 s
    for fsaverage), which would dominate applying the inverse to short data
    again and again. The result is kept while the forward lives, and
    recomputed if its gain was modified in place.
    """
    key, fingerprint = id(forward), _fingerprint(forward)
    cached = _FIXED_GAINS.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1], cached[2]
    gain, names = source_gain(forward)
    gain.flags.writeable = False  # shared by every call on this forward
    if cached is None:
        weakref.finalize(forward, _FIXED_GAINS.pop, key, None)
    _FIXED_GAINS[key] = (fingerprint, gain, names)
    return gain, names
