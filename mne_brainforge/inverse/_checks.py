"""Checks of what users hand to the inverse functions, with messages that say what to do.

Each check is a small function of plain inputs (names, positions, amplitudes,
a model's settings), so that every inverse method of the package can run the
same ones and a user sees the same message for the same mistake.
"""

import inspect

import mne
import numpy as np
from mne.utils import logger, warn

from ..head.forward import check_biosemi_codes, position_unit
from ..nn.topomap import COINCIDENT_DISTANCE, MIN_CHANNELS, coincident_groups

__all__ = [
    "MIN_CHANNELS",
    "check_amplitudes",
    "check_biosemi_codes",
    "check_covariance_channels",
    "check_duplicate_positions",
    "check_model_fit",
    "check_positions_match",
    "check_source_space",
    "railed_channels",
]

#: Data and forward positions of the same channels further apart than this (m,
#: median) get a warning; further than :data:`POSITION_REFUSE` an error.
POSITION_WARN = 5e-3
POSITION_REFUSE = 20e-3
#: Median channel peak-to-peak amplitude (V) from which data are refused
#: (EEG is microvolts to millivolts: such values are in another unit) ...
AMPLITUDE_REFUSE = 1.0
#: ... and from which they get a warning (millivolts passed as volts).
AMPLITUDE_WARN = 0.1
#: A channel at its own minimum or maximum value for at least this fraction of
#: the samples is railed (amplifier saturation, loose electrode).
RAIL_FRACTION = 0.05
#: Data sets shorter than this (samples) are not checked for railed channels.
RAIL_MIN_SAMPLES = 100
#: Data shorter than this fraction of the network's window get a warning
#: (they are zero-padded: the network then sees mostly zeros).
SHORT_FRACTION = 0.5

_FIX_POSITIONS = (
    "Make the forward from the data's own info (make_fsaverage_forward(inst.info)) "
    "or give the data the montage the forward was made for (inst.set_montage)."
)


def _shown(names, n=8):
    names = list(names)
    return ", ".join(names[:n]) + (
        f" ... ({len(names)} in all)" if len(names) > n else ""
    )


def check_source_space(model, forward):
    """Refuse a forward whose cortex is not the one ``model`` was trained on.

    Deep sources of a mixed forward are not the network's business (they get
    a flat prior).
    """
    vertices = [s["vertno"] for s in forward["src"] if s["type"] == "surf"]
    same = len(vertices) == len(model.vertices) and all(
        np.array_equal(a, b) for a, b in zip(vertices, model.vertices)
    )
    if same:
        return
    n_model, n_fwd = sum(map(len, model.vertices)), sum(map(len, vertices))
    subset = len(vertices) == len(model.vertices) and all(
        np.isin(a, b).all() for a, b in zip(vertices, model.vertices)
    )
    why = (
        f" The forward lacks {n_model - n_fwd} of the model's sources: it was made "
        "with mindist > 0, which drops sources near the inner skull. Make it with "
        "mindist=0 (the default of make_fsaverage_forward)."
        if subset and forward["src"]._subject == model.config.get("subject")
        else ""
    )
    raise ValueError(
        "The forward's source space is not the one the model was trained for "
        f"({n_model} sources of subject {model.config.get('subject')!r}, forward: "
        f"{n_fwd} of {forward['src']._subject!r}).{why} Otherwise train a model for "
        "this forward with mne_brainforge.training.train_model(forward), or use the "
        "template: mne_brainforge.make_fsaverage_forward(info)."
    )


def check_positions_match(ch_names, pos, forward):
    """Compare the data's electrode positions with the forward's, channel by channel.

    Parameters
    ----------
    ch_names : list of str
        Channels (all in the forward).
    pos : ndarray, shape (n_channels, 3)
        Their positions in the data (m, head coordinates).
    forward : mne.Forward
        The forward model.

    Raises
    ------
    ValueError
        If the data's positions are not in metres, are the forward's mirrored
        left-right, or are more than :data:`POSITION_REFUSE` away from them
        (median); smaller mismatches above :data:`POSITION_WARN` warn.
    """
    unit, radius = position_unit(pos)
    if unit != "metres":
        raise ValueError(
            f"The data's EEG positions are a median {radius:g} from the head origin: "
            f"they look like {unit}, MNE expects metres. Set the montage in metres "
            "(standard montages are; scale a custom DigMontage's positions)."
        )
    fwd_chs = {ch["ch_name"]: ch["loc"][:3] for ch in forward["info"]["chs"]}
    fwd_pos = np.array([fwd_chs[name] for name in ch_names], float)
    dist = np.linalg.norm(pos - fwd_pos, axis=1)
    median = float(np.median(dist))
    if median <= POSITION_WARN:
        return
    mirrored = np.median(np.linalg.norm(pos - fwd_pos * [-1, 1, 1], axis=1))
    if mirrored <= POSITION_WARN:
        raise ValueError(
            "The data's EEG positions are the forward's mirrored left-right (x "
            f"flipped; median {median * 1e3:.0f} mm apart, {mirrored * 1e3:.1f} mm "
            "once mirrored): left and right would be swapped in the estimate. "
            + _FIX_POSITIONS
        )
    worst = ch_names[int(np.argmax(dist))]
    what = (
        f"The data's EEG positions are a median {median * 1e3:.0f} mm from the "
        f"forward's (largest: {worst}, {dist.max() * 1e3:.0f} mm)"
    )
    if median > POSITION_REFUSE:
        raise ValueError(f"{what}: they are not the same montage. {_FIX_POSITIONS}")
    warn(
        f"{what}: the network uses the data's positions, the forward its own. "
        + _FIX_POSITIONS
    )


def check_duplicate_positions(ch_names, pos):
    """Warn about electrodes at the same site (closer than 1 mm), naming them.

    The scalp maps treat each such group as one site with the channels' mean
    (:func:`mne_brainforge.nn.topomap_matrix`).
    """
    groups = coincident_groups(pos)
    if groups:
        shown = "; ".join(" = ".join(ch_names[i] for i in g) for g in groups[:8])
        warn(
            f"{len(groups)} group(s) of EEG channels have the same position (closer "
            f"than {COINCIDENT_DISTANCE * 1e3:g} mm): {shown}"
            f"{' ...' if len(groups) > 8 else ''}. Their mean is used as one site. "
            "Check the montage (a duplicated or wrongly named channel?), or mark "
            "the duplicates as bad (info['bads'])."
        )
    return groups


def check_amplitudes(ptp):
    """Refuse or warn about EEG amplitudes that cannot be in volts.

    Parameters
    ----------
    ptp : ndarray, shape (n_channels,)
        Peak-to-peak amplitude (in the data's values, meant to be V) of each
        channel that is not flat.
    """
    median = float(np.median(ptp)) if len(ptp) else 0.0
    if median >= AMPLITUDE_REFUSE:
        raise ValueError(
            f"The EEG channels have a median peak-to-peak amplitude of {median:.3g} "
            "'V'; EEG is microvolts to millivolts. The data look like microvolts "
            "passed as volts: scale them by 1e-6 (e.g. inst.apply_function(lambda x: "
            "x * 1e-6), or create the Raw/Evoked/Epochs from data in volts)."
        )
    if median >= AMPLITUDE_WARN:
        warn(
            f"The EEG channels have a median peak-to-peak amplitude of {median:.3g} "
            "V, much more than EEG: the data look like millivolts passed as volts; "
            "scale them by 1e-3 if so (the estimate's amplitude scales with them)."
        )


def railed_channels(names, at_extremes, n_samples, ptp, flat=()):
    """Names of the channels at their own minimum or maximum for many samples.

    Parameters
    ----------
    names : list of str
        Channels.
    at_extremes : ndarray of int, shape (n_channels,)
        Number of samples of each channel equal to its minimum or maximum.
    n_samples : int
        Samples per channel.
    ptp : ndarray, shape (n_channels,)
        Peak-to-peak amplitudes: constant channels (at their extremes
        throughout: a zero reference, flat channels) are not railed.
    flat : collection of str
        Flat channels (left out already), not counted.
    """
    if n_samples < RAIL_MIN_SAMPLES:  # too short to tell
        return []
    # every channel has its one minimum and one maximum sample: count the rest
    fraction = (np.asarray(at_extremes) - 2) / n_samples
    return [
        n
        for n, f, p in zip(names, fraction, ptp)
        if f >= RAIL_FRACTION and p > 0 and n not in flat
    ]


def _trained_channel_range(model):
    """Numbers of channels the model saw in training (simulator defaults if unset)."""
    from ..simulation import EEGSimulator

    training = model.config.get("training", {})
    default = inspect.signature(EEGSimulator).parameters["n_channels_range"].default
    lo, hi = training.get("simulator", {}).get("n_channels_range", default)
    n_total = training.get("n_channels", hi)
    return min(lo, n_total), min(hi, n_total)


def check_model_fit(model, n_channels, sfreq, lowpass, n_samples):
    """Warn about what the network cannot use of the data (it sets the prior only).

    Parameters
    ----------
    model : BrainForgeModel
        The network.
    n_channels : int
        Channels used.
    sfreq, lowpass : float
        The data's sampling rate and low-pass edge (``info['lowpass']``, Hz).
    n_samples : int
        Samples per data set (an evoked, an epoch, the raw span).
    """
    band = model.sfreq / 2
    if lowpass is not None and lowpass > band * 1.01:
        # only the prior is band-limited: the solve uses the data's full band
        logger.info(
            f"The network's prior sees the data up to {band:g} Hz (of {lowpass:g} "
            "Hz); the estimate itself uses the whole band"
        )
    duration, window = n_samples / sfreq, model.n_times / model.sfreq
    if duration < SHORT_FRACTION * window:
        warn(
            f"The data last {duration * 1e3:.0f} ms, the network's window "
            f"{window:g} s: they are zero-padded to it, so the network sees mostly "
            "zeros. Give it longer data (e.g. a wider epoch, tmin/tmax) if you can."
        )
    elif duration < window:
        logger.info(
            f"Data of {duration:g} s zero-padded to the network's {window:g} s window"
        )
    lo, hi = _trained_channel_range(model)
    if not lo <= n_channels <= hi:
        warn(
            f"{n_channels} EEG channels are used; the network was trained on "
            f"{lo}-{hi}: it has not seen scalp maps this "
            f"{'dense' if n_channels > hi else 'sparse'}, so the estimate may be less "
            "accurate than on the montages it was trained for. "
            + (
                f"Pick at most {hi} channels spread over the head (inst.pick), or "
                if n_channels > hi
                else ""
            )
            + "train a model for this montage (mne_brainforge.training.train_model)."
        )


def check_covariance_channels(noise_cov, ch_names, name="noise_cov"):
    """Refuse a covariance that lacks some of the channels an inverse uses.

    Parameters
    ----------
    noise_cov : mne.Covariance
        The covariance.
    ch_names : list of str
        Channels the inverse uses (good channels of the data in the forward).
    name : str
        What to call the covariance in the message.
    """
    if not isinstance(noise_cov, mne.Covariance):
        raise TypeError(
            f"{name} must be an mne.Covariance, got {type(noise_cov).__name__}."
        )
    have = set(noise_cov["names"])
    missing = [n for n in ch_names if n not in have]
    if missing:
        raise ValueError(
            f"{name} lacks {len(missing)} of the {len(ch_names)} EEG channels the "
            f"inverse uses (good data channels in the forward): {_shown(missing)}. "
            f"It has {len(have)} channels ({_shown(noise_cov['names'], 4)}). Compute "
            "it from data with these channels (mne.compute_covariance), use "
            "mne.make_ad_hoc_cov(evoked.info), or mark the missing channels as bad "
            "(evoked.info['bads'])."
        )
