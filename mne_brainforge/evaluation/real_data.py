"""Real EEG with known physiology: the median-nerve SEP that spharapy ships.

spharapy (PyPI) ships a 256-channel somatosensory evoked potential: median
nerve of the RIGHT forearm (its ``eeg_256_channel_study.rst``), 2048 Hz, -50 to
130 ms, µV, average referenced, 2 Hz high-pass, an average of the artefact-free
of 6000 stimulations; with the cap's digitised positions (mm) but no fiducials.
The expected generators: subcortical P14, then the N20/P25 of the
contralateral (LEFT) primary somatosensory hand area (area 3b, posterior bank
of the central sulcus).
"""

import warnings

import mne
import numpy as np
from mne.utils import logger, verbose
from scipy.signal import find_peaks

from ..head import read_fsaverage_source_space
from ..head.fitting import fit_montage_to_template
from ..utils import check_number, check_option

SFREQ = 2048.0
TMIN = -0.05
#: Pre-stimulus window (s) for the noise covariance (stimulus artefact excluded).
BASELINE = (-0.05, -0.005)
#: GFP search windows (s) of the SEP components.
COMPONENTS = {"P14": (0.010, 0.017), "N20": (0.017, 0.025), "P25": (0.025, 0.035)}
#: The S1 hand area in fsaverage (~MNI305) surface RAS (m), left hemisphere;
#: the right one mirrors x. No gyral atlas ships offline (nilearn's Destrieux
#: atlas is a download), so the pre/postcentral hand region is a ball around it.
HAND_AREA_LH = np.array([-0.042, -0.024, 0.054])
REGION_RADIUS = 0.025


@verbose
def load_spharapy_sep(*, min_height=None, verbose=None):
    """Load spharapy's 256-channel median-nerve SEP on the fsaverage template.

    Parameters
    ----------
    min_height : float | None
        Leave out the electrodes whose fitted position lies lower than this (m,
        the height ``z`` in the template's head frame; the cap spans -34 to
        141 mm): the template's closed BEM has no neck, so its gain is least
        accurate at the cap's lower rim (face, ears, neck). None keeps all 256.
    %(verbose)s

    Returns
    -------
    evoked : mne.EvokedArray
        The SEP in volts, with the average-reference projection, its positions
        fitted to the template scalp with
        :func:`mne_brainforge.head.fitting.fit_montage_to_template`.
    noise_cov : mne.Covariance
        Diagonal covariance of the pre-stimulus baseline (``BASELINE``) of the
        average itself (so it is the noise of the average: ``nave`` is 1). The
        baseline has 93 samples for 256 channels, too few for a full-rank
        estimate; the diagonal keeps each channel's own noise level.
    meta : dict
        ``stimulated`` ('right'), ``hemi_expected`` ('lh'), ``latencies``
        (component -> GFP peak latency, s), ``fit`` (the montage fit report).

    Examples
    --------
    >>> from mne_brainforge.evaluation.real_data import load_spharapy_sep
    >>> evoked, noise_cov, meta = load_spharapy_sep(verbose="error")
    >>> meta["hemi_expected"], len(evoked.ch_names)
    ('lh', 256)
    """
    try:
        from spharapy.datasets import load_eeg_256_channel_study
    except ImportError as err:
        raise ImportError(
            "The SEP data ship with spharapy: pip install 'spharapy>=1.3'."
        ) from err
    study = load_eeg_256_channel_study()
    names = [str(n) for n in study["labellist"]]
    pos = np.asarray(study["vertlist"], float) * 1e-3  # mm -> m
    mon = mne.channels.make_dig_montage(dict(zip(names, pos)), coord_frame="unknown")
    # No fiducials or 10-05 names: the orientation comes from the head shape.
    # The winner maps the file's +x to anterior and +y to left, the usual
    # right-handed (x nasion, y left ear, z up) digitiser frame.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The orientation was chosen")
        fitted, fit = fit_montage_to_template(mon, verbose=False)
    logger.info(
        f"SEP cap fitted to fsaverage: {fit['rms_mm']:.1f} mm rms "
        f"(next orientation {fit['runner_up_rms_mm']:.1f} mm)"
    )
    info = mne.create_info(names, SFREQ, "eeg")
    info.set_montage(fitted)
    data = np.asarray(study["eegdata"], float) * 1e-6  # µV -> V
    # the components' latencies from the whole cap, whatever is left out (the
    # GFP, a spread across channels, does not depend on the reference)
    gfp = data.std(axis=0)
    if min_height is not None:
        min_height = check_number(min_height, "min_height")
        keep = np.flatnonzero([ch["loc"][2] >= min_height for ch in info["chs"]])
        if len(keep) < 16:
            raise ValueError(
                f"Only {len(keep)} electrodes lie above min_height={min_height} m; "
                "give a lower height (the cap spans -0.034 to 0.141 m)."
            )
        logger.info(f"Keeping the {len(keep)} electrodes above {1e3 * min_height:g} mm")
        info, data = mne.pick_info(info, keep), data[keep]
        names = info["ch_names"]
    evoked = mne.EvokedArray(data, info, tmin=TMIN, nave=1, comment="SEP right MN")
    evoked.set_eeg_reference(projection=True, verbose=False).apply_proj()

    in_base = (evoked.times >= BASELINE[0]) & (evoked.times <= BASELINE[1])
    base = evoked.data[:, in_base]
    var = base.var(axis=1)
    noise_cov = mne.Covariance(
        np.diag(var), names, bads=[], projs=[], nfree=base.shape[1] - 1
    )

    latencies = {}
    for comp, (t0, t1) in COMPONENTS.items():
        sel = np.flatnonzero((evoked.times >= t0) & (evoked.times <= t1))
        peaks, _ = find_peaks(gfp[sel])
        k = sel[peaks[np.argmax(gfp[sel][peaks])]] if len(peaks) else sel[0]
        latencies[comp] = float(evoked.times[k])
    meta = {
        "stimulated": "right",
        "hemi_expected": "lh",
        "latencies": latencies,
        "fit": fit,
    }
    return evoked, noise_cov, meta


def expected_region(hemi, src=None):
    """Source-space vertices of the S1 hand region of one hemisphere.

    Parameters
    ----------
    hemi : 'lh' | 'rh'
        The hemisphere.
    src : mne.SourceSpaces | None
        The template source space (read if None).

    Returns
    -------
    vertices : ndarray of int
        Vertex numbers within ``REGION_RADIUS`` of the hand area.
    centre : ndarray, shape (3,)
        The hand area (m, fsaverage surface RAS).
    """
    check_option("hemi", hemi, ("lh", "rh"))
    src = read_fsaverage_source_space(verbose=False) if src is None else src
    s = src[0 if hemi == "lh" else 1]
    centre = HAND_AREA_LH * ([1, 1, 1] if hemi == "lh" else [-1, 1, 1])
    vertno = s["vertno"]
    inside = np.linalg.norm(s["rr"][vertno] - centre, axis=1) <= REGION_RADIUS
    return vertno[inside], centre


def score_sep(stc, *, latency, hemi_expected, window=0.002, src=None):
    """Score a source estimate of the SEP against the expected S1 generator.

    Parameters
    ----------
    stc : mne.SourceEstimate | mne.VectorSourceEstimate
        The estimate on (a subset of) the template's ico5 sources.
    latency : float
        The component latency (s).
    hemi_expected : 'lh' | 'rh'
        The hemisphere contralateral to the stimulated side.
    window : float
        Half width (s) of the window around ``latency`` whose energy is scored.
    src : mne.SourceSpaces | None
        The template source space (read if None).

    Returns
    -------
    scores : dict
        ``peak_hemi``, ``peak_pos_mm`` (fsaverage surface RAS), ``in_region``
        (peak within the hand region), ``distance_mm`` (from the peak to the
        region: 0 inside), ``energy_region`` and ``energy_hemi`` (fractions of
        the window's energy in the region and in the expected hemisphere).
    """
    latency = check_number(latency, "latency")
    check_option("hemi_expected", hemi_expected, ("lh", "rh"))
    src = read_fsaverage_source_space(verbose=False) if src is None else src
    if isinstance(stc, mne.VectorSourceEstimate):
        stc = stc.magnitude()
    sel = np.abs(stc.times - latency) <= window + 0.5 / stc.sfreq
    if not sel.any():
        raise ValueError(f"No time of the estimate within {window} s of {latency}.")
    energy = np.sum(stc.data[:, sel] ** 2, axis=1)
    hemis = np.repeat(["lh", "rh"], [len(v) for v in stc.vertices])
    rr = np.concatenate([src[i]["rr"][v] for i, v in enumerate(stc.vertices)])
    region, centre = expected_region(hemi_expected, src)
    in_region = (hemis == hemi_expected) & np.isin(np.concatenate(stc.vertices), region)
    total = energy.sum()
    peak = int(np.argmax(energy))
    return {
        "peak_hemi": str(hemis[peak]),
        "peak_pos_mm": [round(float(x), 1) for x in rr[peak] * 1e3],
        "in_region": bool(in_region[peak]),
        "distance_mm": distance_to_region(rr[peak], hemi_expected),
        "energy_region": float(energy[in_region].sum() / total) if total else 0.0,
        "energy_hemi": float(energy[hemis == hemi_expected].sum() / total)
        if total
        else 0.0,
    }


def distance_to_region(pos, hemi):
    """Distance (mm) from a position (m) to the hand region's ball (0 inside)."""
    centre = HAND_AREA_LH * ([1, 1, 1] if hemi == "lh" else [-1, 1, 1])
    return round(max(float(np.linalg.norm(pos - centre)) - REGION_RADIUS, 0.0) * 1e3, 1)
