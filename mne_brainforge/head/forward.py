"""EEG forward models on the template head for any montage."""

import re

import mne
import numpy as np
from mne.io.constants import FIFF
from mne.utils import _validate_type, logger, verbose, warn

from ..utils import check_number
from ._geometry import read_shipped_bem_surface, surface_distance
from .deep import make_deep_source_space
from .template import (
    DEFAULT_CONDUCTIVITY,
    DEFAULT_SKULL_THICKNESS,
    fsaverage_trans_path,
    make_fsaverage_bem_solution,
    read_fsaverage_source_space,
)

# An electrode this far from the template scalp (after MNE would project it onto
# the scalp) means the montage is not in fsaverage head coordinates.
_MAX_SCALP_DISTANCE = 0.02  # m
# Plausible distance of a scalp electrode from the head origin, in metres
_HEAD_RADIUS_RANGE = (0.04, 0.25)
# Typical head radius (m): the unit of positions is the one that brings their
# median distance from the origin closest to it
_HEAD_RADIUS = 0.09
_UNITS = {"metres": 1.0, "centimetres": 1e-2, "millimetres": 1e-3}
# BioSemi electrode codes (A1-A32, B1-B32, ...): numbers 11-32 after a single
# letter exist in no 10-20/10-05 name, so one such label marks the pattern
_BIOSEMI_CODE = re.compile(r"^[A-H](1[1-9]|2[0-9]|3[0-2])$")
_BIOSEMI_CODED_MONTAGES = ("biosemi128", "biosemi256")

# MNE 1.13 renamed standard_1005 to fsaverage_1005
_STANDARD_1005 = next(
    name
    for name in ("fsaverage_1005", "standard_1005")
    if name in mne.channels.get_builtin_montages()
)
_MONTAGE_HINT = (
    f"Set a standard montage, e.g. inst.set_montage({_STANDARD_1005!r}) (all MNE "
    "standard montages are in fsaverage head coordinates), or a DigMontage in "
    "metres with fiducials."
)


def cortex_normal(fwd):
    """``fwd`` with fixed orientation normal to the cortex: itself if it has it, else a copy."""
    if fwd["source_ori"] == FIFF.FIFFV_MNE_FIXED_ORI:
        return fwd
    return mne.convert_forward_solution(
        fwd, surf_ori=True, force_fixed=True, verbose=False
    )


def fixed_orientation_gain(fwd):
    """Return the EEG gain matrix of a fixed-orientation surface forward.

    Parameters
    ----------
    fwd : mne.Forward
        Forward solution with EEG channels on a surface source space, with fixed
        (cortex-normal) orientation.

    Returns
    -------
    gain : ndarray, shape (n_eeg_channels, n_sources)
        The gain (V per A·m), EEG rows only, sources in forward order.
    ch_names : list of str
        The EEG channel names of the rows.
    """
    if not isinstance(fwd, mne.Forward):
        raise TypeError(f"fwd must be an mne.Forward, got {type(fwd).__name__}.")
    kinds = {s["type"] for s in fwd["src"]}
    if kinds != {"surf"}:
        raise ValueError(
            f"The forward's source space is {sorted(kinds)}; only surface source "
            "spaces are supported here. Compute the forward on a cortical surface "
            "source space (mne.setup_source_space or make_fsaverage_forward); "
            "mixed forwards with deep sources go through source_gain."
        )
    picks = _eeg_picks(fwd)
    if fwd["source_ori"] != FIFF.FIFFV_MNE_FIXED_ORI:
        raise ValueError(
            "The forward has free source orientation; the simulation places dipoles "
            "normal to the cortex. Convert it first: fwd = mne.convert_forward_solution("
            "fwd, surf_ori=True, force_fixed=True)."
        )
    gain = np.asarray(fwd["sol"]["data"][picks], np.float64)
    return gain, [fwd["info"]["ch_names"][p] for p in picks]


def source_gain(fwd):
    """EEG gain with one column per fixed dipole, for surface and mixed forwards.

    Parameters
    ----------
    fwd : mne.Forward
        EEG forward on a surface source space (any orientation: the
        cortex-normal component is used), or on a mixed source space with the
        surfaces first (free orientation, e.g. ``make_fsaverage_forward(info,
        deep=True)``).

    Returns
    -------
    gain : ndarray, shape (n_eeg_channels, n_columns)
        The cortex-normal column of every surface source, then three columns
        (x, y, z dipoles, head coordinates) of every deep source (V per A·m).
    ch_names : list of str
        The EEG channel names of the rows.
    """
    if not isinstance(fwd, mne.Forward):
        raise TypeError(f"fwd must be an mne.Forward, got {type(fwd).__name__}.")
    kinds = [s["type"] for s in fwd["src"]]
    if set(kinds) == {"surf"}:
        return fixed_orientation_gain(cortex_normal(fwd))
    n_surf = kinds.count("surf")
    if n_surf == 0 or kinds[:n_surf] != ["surf"] * n_surf:
        raise ValueError(
            f"The forward's source spaces are {kinds}: mne-brainforge needs the "
            "cortex (surface source spaces, first), optionally followed by deep "
            "sources; use make_fsaverage_forward(info, deep=True)."
        )
    if fwd["source_ori"] == FIFF.FIFFV_MNE_FIXED_ORI:
        raise ValueError(
            "The mixed forward has fixed orientation; deep sources have no cortex "
            "normal: use the free-orientation forward (make_fsaverage_forward("
            "info, deep=True) without converting it)."
        )
    picks = _eeg_picks(fwd)
    # each source's x, y, z dipoles (head coordinates): a surf_ori forward's
    # triplets are rotated by ``source_nn``, undone here
    n_src = fwd["nsource"]
    triplets = fwd["sol"]["data"][picks].reshape(len(picks), n_src, 3)
    xyz = np.einsum("csk,skj->csj", triplets, fwd["source_nn"].reshape(n_src, 3, 3))
    normals = np.concatenate([s["nn"][s["vertno"]] for s in fwd["src"][:n_surf]])
    cortex = np.einsum("csj,sj->cs", xyz[:, : len(normals)], normals)
    gain = np.concatenate([cortex, xyz[:, len(normals) :].reshape(len(picks), -1)], 1)
    return gain, [fwd["info"]["ch_names"][p] for p in picks]


def _eeg_picks(fwd):
    picks = mne.pick_types(fwd["info"], meg=False, eeg=True, exclude=())
    if len(picks) == 0:
        raise ValueError(
            "The forward has no EEG channels (MEG-only?). mne-brainforge simulates "
            "EEG: compute the forward with eeg=True, e.g. make_fsaverage_forward(info)."
        )
    return picks


def _get_info(info):
    if isinstance(info, mne.Info):
        return info
    if hasattr(info, "info") and isinstance(info.info, mne.Info):
        return info.info
    raise TypeError(
        "info must be an mne.Info (or a Raw, Epochs or Evoked carrying one), got "
        f"{type(info).__name__}."
    )


def position_unit(pos):
    """Guess the unit of electrode positions from their distance to the origin.

    Parameters
    ----------
    pos : ndarray, shape (n_channels, 3)
        Electrode positions in head coordinates.

    Returns
    -------
    unit : str
        ``'metres'``, ``'centimetres'`` or ``'millimetres'``: the unit in which
        the median distance from the origin is closest to a head radius (m:
        ~0.1, cm: ~10, mm: ~100).
    radius : float
        That median distance, in the positions' own unit.
    """
    radius = float(np.median(np.linalg.norm(np.asarray(pos, float), axis=1)))
    if not radius > 0:
        return "metres", radius
    unit = min(
        _UNITS,
        key=lambda u: abs(np.log(radius * _UNITS[u] / _HEAD_RADIUS)),
    )
    return unit, radius


def check_biosemi_codes(info):
    """Warn if the EEG labels are BioSemi electrode codes placed by a 10-20 montage.

    EDF/BDF files of BioSemi caps often name channels by electrode code (A1-A32,
    B1-B32, ...). Some codes (A1, A2, C3, F4, P3, ...) are also 10-20 names, so
    ``set_montage('standard_1020', on_missing='ignore')`` silently puts them at
    the wrong 10-20 sites. Codes placed by the ``biosemi128`` or
    ``biosemi256`` montages (which use them as names) pass.

    Parameters
    ----------
    info : mne.Info
        Measurement info.

    Returns
    -------
    coded : list of str
        The EEG channels with BioSemi-code labels if they look misplaced, else
        an empty list.
    """
    picks = mne.pick_types(info, meg=False, eeg=True, exclude=())
    names = [info["ch_names"][p] for p in picks]
    if not any(_BIOSEMI_CODE.match(n) for n in names):
        return []
    coded = [n for n in names if re.match(r"^[A-H]\d{1,2}$", n)]
    pos = {info["ch_names"][p]: info["chs"][p]["loc"][:3] for p in picks}
    placed = [n for n in coded if np.all(np.isfinite(pos[n])) and np.any(pos[n])]
    for name in _BIOSEMI_CODED_MONTAGES:
        montage = mne.channels.make_standard_montage(name)
        ref_info = mne.create_info(montage.ch_names, 1.0, "eeg").set_montage(montage)
        ref = {ch["ch_name"]: ch["loc"][:3] for ch in ref_info["chs"]}  # head frame
        if placed and all(
            n in ref and np.linalg.norm(ref[n] - pos[n]) < 5e-3 for n in placed
        ):
            return []  # placed by a BioSemi montage that uses the codes
    shown = ", ".join(coded[:6]) + (" ..." if len(coded) > 6 else "")
    warn(
        f"{len(coded)} EEG channel labels are BioSemi electrode codes ({shown}), "
        "not 10-20 names: a 10-20 montage (e.g. standard_1020) places those that "
        "are also 10-20 names (A1, A2, C3, ...) at the wrong sites and the rest "
        "nowhere. Use the cap's montage: inst.set_montage('biosemi128') or "
        "'biosemi256' for those caps; for 16-64 channel caps rename the channels "
        "to the 10-20 names of make_standard_montage('biosemi64') (or 32/16), "
        "which lists them in code order (A1, A2, ..., B32)."
    )
    return coded


def check_eeg_positions(info):
    """Check that an Info has EEG electrodes placed on the fsaverage head.

    Parameters
    ----------
    info : mne.Info | Raw | Epochs | Evoked
        The measurement info (or an instance carrying one).

    Returns
    -------
    picks : ndarray of int
        Indices of the EEG channels (bad channels included, as in MNE forwards).

    Raises
    ------
    ValueError
        With a message saying what to do, if there are no EEG channels, some
        have no position, or the positions are not in metres in fsaverage head
        coordinates.

    See Also
    --------
    mne_brainforge.make_fsaverage_forward : Runs this check first.

    Examples
    --------
    >>> import mne
    >>> from mne_brainforge.head import check_eeg_positions
    >>> montage = mne.channels.make_standard_montage("biosemi64")
    >>> info = mne.create_info(montage.ch_names, 250.0, "eeg").set_montage(montage)
    >>> len(check_eeg_positions(info))
    64
    """
    info = _get_info(info)
    picks = mne.pick_types(info, meg=False, eeg=True, exclude=())
    if len(picks) == 0:
        types = sorted(set(info.get_channel_types()))
        raise ValueError(
            f"The data have no EEG channels (channel types: {types}). mne-brainforge "
            "models EEG only; pick or set the EEG channels (inst.set_channel_types)."
        )
    check_biosemi_codes(info)
    chs = [info["chs"][p] for p in picks]
    pos = np.array([ch["loc"][:3] for ch in chs])
    missing = [
        ch["ch_name"]
        for ch, p in zip(chs, pos)
        if not np.all(np.isfinite(p)) or not p.any()
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(
            f"{len(missing)} of {len(picks)} EEG channels have no position ({shown}). "
            f"{_MONTAGE_HINT} Drop channels that no montage covers "
            "(inst.drop_channels)."
        )
    frames = {ch["coord_frame"] for ch in chs}
    if frames != {FIFF.FIFFV_COORD_HEAD}:
        raise ValueError(
            "EEG positions must be in head coordinates, found coordinate frame(s) "
            f"{sorted(frames)}. {_MONTAGE_HINT}"
        )
    unit, radius = position_unit(pos)
    if unit != "metres" or not _HEAD_RADIUS_RANGE[0] <= radius <= _HEAD_RADIUS_RANGE[1]:
        guess = (
            f" They look like {unit}; MNE expects metres: scale them by "
            f"{_UNITS[unit]:g} (montage positions are in metres)."
            if unit != "metres"
            else ""
        )
        raise ValueError(
            f"EEG positions are a median {radius:g} from the head origin, expected "
            f"about {_HEAD_RADIUS} (metres).{guess} {_MONTAGE_HINT}"
        )
    trans = mne.read_trans(fsaverage_trans_path(), verbose=False)
    scalp = read_shipped_bem_surface("fsaverage-head.fif")
    dist = surface_distance(
        mne.transforms.apply_trans(trans, pos), scalp["rr"], scalp["tris"]
    )
    if np.median(dist) > _MAX_SCALP_DISTANCE:
        raise ValueError(
            f"EEG positions are a median {np.median(dist) * 1e3:.0f} mm away from the "
            "fsaverage scalp: they are not in fsaverage head coordinates (digitised "
            "positions of another head must be coregistered to fsaverage first). "
            + _MONTAGE_HINT
        )
    return picks


@verbose
def make_fsaverage_forward(
    info,
    *,
    conductivity=DEFAULT_CONDUCTIVITY,
    skull_thickness=DEFAULT_SKULL_THICKNESS,
    mindist=0.0,
    deep=False,
    n_jobs=None,
    verbose=None,
):
    """Compute an EEG forward model on the offline fsaverage template.

    Parameters
    ----------
    info : mne.Info | Raw | Epochs | Evoked
        Measurement info with an EEG montage in fsaverage head coordinates (all
        MNE standard montages are). Non-EEG channels are ignored.
    conductivity : tuple of float, shape (3,)
        Brain, skull and scalp conductivities (S/m). Non-default values compute
        and cache another BEM solution on first use (about a minute).
    skull_thickness : float
        Largest skull thickness (m) of the template's derived outer skull
        (default 7 mm); see :func:`~mne_brainforge.datasets.make_fsaverage_bem_solution`.
    mindist : float
        Exclude sources closer than this to the inner skull (mm), as in
        :func:`mne.make_forward_solution`. The default 0 keeps all 2 x 10242 ico5
        vertices, so estimates are complete fsaverage ico5 estimates. The
        pretrained models were trained on all of them: a forward made with
        ``mindist > 0`` lacks some sources and only fits a model trained on it
        (:func:`mne_brainforge.training.train_model`).
    deep : bool | mne.SourceSpaces
        Add the deep sources (thalamus, hippocampus, amygdala, caudate and
        putamen on a 5 mm grid, free orientation) to the cortex: the forward is
        then on the mixed source space of
        :func:`~mne_brainforge.head.make_deep_source_space`, and estimates on
        it are :class:`mne.MixedSourceEstimate`. A mixed source space of that
        function (another spacing or grid offset) is used as given.
    n_jobs : int | None
        Number of jobs, as in :func:`mne.make_forward_solution`.
    %(verbose)s

    Returns
    -------
    fwd : mne.Forward
        Free-orientation EEG forward solution on the ico5 source space (and
        the deep sources with ``deep=True``; subject ``fsaverage``), exactly as :func:`mne.make_forward_solution` returns;
        convert with :func:`mne.convert_forward_solution` for fixed orientation.

    See Also
    --------
    mne_brainforge.head.check_eeg_positions
    mne_brainforge.datasets.fetch_fsaverage
    mne_brainforge.apply_brainforge_inverse

    Notes
    -----
    See the tutorials :ref:`sphx_glr_auto_tutorials_00_quickstart.py` and, for
    another skull conductivity, :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    >>> import mne
    >>> import mne_brainforge as bf
    >>> montage = mne.channels.make_standard_montage("biosemi64")
    >>> info = mne.create_info(montage.ch_names, 250.0, "eeg").set_montage(montage)
    >>> fwd = bf.make_fsaverage_forward(info)
    >>> fwd["nsource"], fwd["nchan"]
    (20484, 64)

    A head with a more conductive skull (its BEM solution is computed and
    cached on first use):

    >>> fwd = bf.make_fsaverage_forward(info, conductivity=(0.3, 0.0125, 0.3))

    With the deep structures (a mixed source space):

    >>> fwd = bf.make_fsaverage_forward(info, deep=True)
    >>> fwd["src"].kind
    'mixed'
    """
    info = _get_info(info)
    mindist = check_number(mindist, "mindist", minimum=0)
    _validate_type(deep, (bool, mne.SourceSpaces), "deep")
    if isinstance(deep, mne.SourceSpaces) and deep.kind != "mixed":
        raise ValueError(
            f"deep must be True/False or a mixed source space of "
            f"make_deep_source_space, got a {deep.kind} source space."
        )
    picks = check_eeg_positions(info)
    info = mne.pick_info(info, picks)  # a copy: the caller's Info is untouched
    if isinstance(deep, mne.SourceSpaces):
        src = deep
    else:
        src = make_deep_source_space() if deep else read_fsaverage_source_space()
    bem = make_fsaverage_bem_solution(conductivity, skull_thickness=skull_thickness)
    logger.info(f"Computing the fsaverage forward model for {len(picks)} EEG channels")
    return mne.make_forward_solution(
        info,
        trans=fsaverage_trans_path(),
        src=src,
        bem=bem,
        meg=False,
        eeg=True,
        mindist=mindist,
        n_jobs=n_jobs,
        verbose=verbose,
    )
