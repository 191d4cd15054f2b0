"""EEG montages: one builder for a cap name, a montage file or a channel count."""

from pathlib import Path

import mne

from ..utils import check_number, check_type

#: The BioSemi cap used for a bare channel count.
BIOSEMI_BY_COUNT = {
    16: "biosemi16",
    32: "biosemi32",
    64: "biosemi64",
    128: "biosemi128",
    256: "biosemi256",
}


def make_montage_info(montage, sfreq=250.0):
    """Info of EEG channels with positions, from a montage name, file or count.

    Parameters
    ----------
    montage : str | path-like | int | mne.channels.DigMontage
        A name of :func:`mne.channels.get_builtin_montages` (``'biosemi64'``,
        ``'standard_1020'``, ...), a file that
        :func:`mne.channels.read_custom_montage` reads, a channel count of a
        BioSemi cap (16, 32, 64 or 128), or a montage object.
    sfreq : float
        Sampling rate (Hz) of the Info.

    Returns
    -------
    info : mne.Info
        EEG channels of the montage, with their positions.

    Examples
    --------
    >>> from mne_brainforge.head import make_montage_info
    >>> len(make_montage_info(64).ch_names), len(make_montage_info("biosemi32").ch_names)
    (64, 32)
    """
    sfreq = check_number(sfreq, "sfreq", minimum=0, strict=True)
    check_type(montage, ("int-like", "path-like", mne.channels.DigMontage), "montage")
    if isinstance(montage, mne.channels.DigMontage):
        mon = montage
    elif not isinstance(montage, (str, Path)):
        if int(montage) not in BIOSEMI_BY_COUNT:
            raise ValueError(
                f"A channel count must be one of {sorted(BIOSEMI_BY_COUNT)} (the "
                f"BioSemi caps), got {montage!r}; give a montage name or file for "
                "other caps."
            )
        mon = mne.channels.make_standard_montage(BIOSEMI_BY_COUNT[int(montage)])
    elif str(montage) in mne.channels.get_builtin_montages():
        mon = mne.channels.make_standard_montage(str(montage))
    elif Path(montage).is_file():
        mon = mne.channels.read_custom_montage(montage)
    else:
        raise ValueError(
            f"montage {str(montage)!r} is neither an MNE standard montage "
            f"({', '.join(mne.channels.get_builtin_montages()[:6])}, ...), a file, "
            f"nor a channel count ({', '.join(map(str, BIOSEMI_BY_COUNT))})."
        )
    info = mne.create_info(mon.ch_names, sfreq, "eeg")
    info.set_montage(mon)
    return info


def jitter_electrodes(info, sd, rng):
    """Copy of ``info`` with each EEG position moved by N(0, sd) per axis (m).

    Parameters
    ----------
    info : mne.Info
        Info with channel positions.
    sd : float
        Standard deviation (m) of the displacement along each axis.
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    info : mne.Info
        A copy with the moved positions (the input is not changed).

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.head import jitter_electrodes, make_montage_info
    >>> info_true = jitter_electrodes(make_montage_info(64), 0.004, np.random.default_rng(0))
    """
    sd = check_number(sd, "sd", minimum=0)
    info = info.copy()
    with info._unlock():
        for ch in info["chs"]:
            ch["loc"][:3] += rng.normal(0, sd, 3)
    return info
