"""Extraction of isolated spike waveforms and background from region signals.

All window and duration parameters are in seconds and converted to samples at
the signals' sampling rate, so the same trace sampled at different rates gives
the same spike times.

Amplitudes are judged by a robust z-score per region: the deviation from the
region's median (its resting level) divided by ``1.4826 * MAD``, the median
absolute deviation scaled to equal the standard deviation for Gaussian noise.
Sparse spikes barely move the median and the MAD, so the z-score measures
them against the background fluctuations of their own region.
"""

import numpy as np
from mne.utils import logger, verbose
from scipy.signal import find_peaks
from scipy.stats import median_abs_deviation

from ..utils import check_number, resample

__all__ = ["extract_background", "extract_spikes", "robust_zscore"]


def _check_signals(signals, sfreq):
    signals = np.asarray(signals, dtype=float)
    if signals.ndim == 1:
        signals = signals[np.newaxis]
    if signals.ndim != 2:
        raise ValueError(
            "signals must be an array of shape (n_regions, n_times), got shape "
            f"{signals.shape}."
        )
    if signals.shape[1] < 3:
        raise ValueError(f"signals has only {signals.shape[1]} time samples.")
    if not np.all(np.isfinite(signals)):
        raise ValueError("signals contains non-finite values (NaN or inf).")
    sfreq = float(sfreq)
    if not np.isfinite(sfreq) or sfreq <= 0:
        raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq}.")
    return signals, sfreq


def _check_nonneg(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value}.")
    return value


def _check_window(window):
    try:
        tmin, tmax = (float(w) for w in window)
    except (TypeError, ValueError):
        raise ValueError(
            f"window must be a (tmin, tmax) pair of seconds, got {window!r}."
        ) from None
    if not (np.isfinite(tmin) and np.isfinite(tmax)) or tmin >= tmax:
        raise ValueError(
            f"window must satisfy tmin < tmax (seconds relative to the spike "
            f"peak), got {window!r}."
        )
    if not tmin <= 0 <= tmax:
        raise ValueError(
            f"window must contain the spike peak (tmin <= 0 <= tmax), got {window!r}."
        )
    return tmin, tmax


def _maybe_resample(signals, sfreq, sfreq_out):
    """Resample with a polyphase anti-aliasing filter if sfreq_out is given."""
    if sfreq_out is None:
        return signals, sfreq
    sfreq_out = check_number(sfreq_out, "sfreq_out", minimum=0, strict=True)
    return resample(signals, sfreq, sfreq_out), sfreq_out


def robust_zscore(signals, *, clip=3.5, n_iter=2):
    """Robust z-score of each row: (x - median) / (1.4826 * MAD).

    The median and the MAD are estimated on the background: after a first
    estimate on all samples, they are re-estimated ``n_iter`` times on the
    samples whose absolute z-score is at most ``clip`` (sigma clipping), so that
    frequent spikes and their slow waves do not inflate the scale.

    Parameters
    ----------
    signals : array, shape (n_regions, n_times)
        The signals.
    clip : float
        Absolute z-score above which samples are left out of the re-estimate.
    n_iter : int
        Number of sigma-clipping passes (0: plain median and MAD).

    Returns
    -------
    z : ndarray, shape (n_regions, n_times)
        The robust z-scores. A row whose MAD is zero (e.g. constant except for
        a few samples) is scaled by its standard deviation instead, and a
        constant row gets z = 0.
    median : ndarray, shape (n_regions,)
        The median (resting level) of each row.
    """
    signals = np.atleast_2d(np.asarray(signals, float))
    median, scale, _ = _median_scale(signals)
    min_kept = max(3, signals.shape[1] // 4)
    for _ in range(int(n_iter)):
        keep = np.abs(signals - median[:, np.newaxis]) <= clip * scale[:, np.newaxis]
        for i in np.flatnonzero(keep.sum(axis=-1) >= min_kept):
            # rows with too few background samples keep the previous estimate
            m, sc, valid = _median_scale(signals[i, keep[i]][np.newaxis])
            if valid[0]:  # not constant once clipped (else keep the first pass)
                median[i], scale[i] = m[0], sc[0]
    return (signals - median[:, np.newaxis]) / scale[:, np.newaxis], median


def _median_scale(signals):
    median = np.median(signals, axis=-1)
    dev = signals - median[:, np.newaxis]
    scale = median_abs_deviation(signals, axis=-1, scale="normal")
    bad = scale <= 1e-12 * np.maximum(1.0, np.abs(median))
    if bad.any():
        scale[bad] = dev[bad].std(axis=-1)
    valid = scale > 0
    scale[~valid] = 1.0
    return median, scale, valid


def _window_samples(window, sfreq):
    tmin, tmax = window
    return int(round(-tmin * sfreq)), int(round(tmax * sfreq))


@verbose
def extract_spikes(
    signals,
    sfreq,
    target,
    *,
    transient=1.0,
    window=(-0.2, 0.3),
    threshold=8.0,
    isolation=6.0,
    min_distance=0.1,
    exclusive=True,
    sfreq_out=None,
    normalize=False,
    return_counts=False,
    verbose=None,
):
    """Find the isolated spikes of a target region and cut out their waveforms.

    1. The first ``transient`` seconds are discarded (optionally after
       resampling to ``sfreq_out``).
    2. Candidate spikes are the local maxima of the target's robust z-score
       (see :func:`robust_zscore`) above ``threshold``, at least
       ``min_distance`` seconds apart (the larger one wins).
    3. A candidate is kept only if its whole ``window`` lies within the signal,
       if (``exclusive``) no other candidate falls in its window or less than
       ``min_distance`` outside it (so no neighbour's rise or slow wave enters
       the waveform), and if it is *isolated*: no other region's absolute
       robust z-score (each against its own median and MAD) exceeds
       ``isolation`` anywhere in the window.

    Parameters
    ----------
    signals : array, shape (n_regions, n_times)
        The region signals (e.g. from
        :func:`~mne_brainforge.simulation.simulate_jansen_rit`).
    sfreq : float
        Their sampling rate in Hz.
    target : int
        The row of ``signals`` whose spikes are extracted.
    transient : float
        Initial duration to discard, in seconds.
    window : tuple of float
        ``(tmin, tmax)`` of the waveform around the peak, in seconds
        (``tmin <= 0 <= tmax``). Both ends are included, as in
        :class:`mne.Epochs`:
        ``n_times = round(tmax * sfreq) - round(tmin * sfreq) + 1``.
    threshold : float
        Detection threshold on the target's robust z-score.
    isolation : float | None
        Largest absolute robust z-score another region may reach within the
        window of a kept spike. ``None`` keeps spikes whatever the other
        regions do.
    min_distance : float
        Minimal time between two candidate peaks, in seconds.
    exclusive : bool
        Whether to reject spikes with another candidate peak in their window
        or within ``min_distance`` of it (doublets), so that each waveform
        holds a single spike.
    sfreq_out : float | None
        If given, resample the signals to this rate (polyphase filter) before
        anything else; the waveforms are then at ``sfreq_out``.
    normalize : bool
        If False (default) the waveforms are in the unit of ``signals`` (mV for
        Jansen-Rit), relative to the target's median (its resting level). If
        True they are further divided by their value at the peak (peak = 1).
    return_counts : bool
        Whether to also return a dict counting the candidates and the reasons
        for rejection.
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    waveforms : ndarray, shape (n_spikes, n_times)
        The spike waveforms (see ``normalize``), peak at sample
        ``round(-tmin * sfreq)``.
    peak_times : ndarray, shape (n_spikes,)
        Time of each peak in seconds from the first sample of ``signals``,
        refined between samples by parabolic interpolation.
    counts : dict
        Only if ``return_counts``: ``n_candidates``, ``n_edge`` (window outside
        the signal), ``n_overlap`` (doublets), ``n_not_isolated`` and
        ``n_spikes``.

    See Also
    --------
    simulate_jansen_rit, extract_background, build_waveform_library

    Examples
    --------
    >>> from mne_brainforge.simulation import extract_spikes, simulate_jansen_rit
    >>> signals, sfreq = simulate_jansen_rit("connectivity_76", 5, sfreq_out=500.0)
    >>> waveforms, peak_times = extract_spikes(signals, sfreq, target=5)
    >>> waveforms.shape[1]  # 0.5 s window at 500 Hz, both ends included
    251
    """
    signals, sfreq = _check_signals(signals, sfreq)
    n_regions = signals.shape[0]
    if isinstance(target, (bool, np.bool_)) or not isinstance(
        target, (int, np.integer)
    ):
        raise TypeError(f"target must be an int, got {type(target).__name__}.")
    target = int(target)
    if not 0 <= target < n_regions:
        raise ValueError(
            f"target must be in [0, {n_regions - 1}] (signals has {n_regions} "
            f"rows), got {target}."
        )
    transient = _check_nonneg("transient", transient)
    window = _check_window(window)
    threshold = _check_nonneg("threshold", threshold)
    isolation = _check_nonneg("isolation", isolation, allow_none=True)
    min_distance = _check_nonneg("min_distance", min_distance)
    signals, sfreq = _maybe_resample(signals, sfreq, sfreq_out)
    n0 = int(round(transient * sfreq))
    if n0 >= signals.shape[1] - 2:
        raise ValueError(
            f"transient ({transient} s) is longer than the signals "
            f"({signals.shape[1] / sfreq:.3f} s)."
        )
    z, median = robust_zscore(signals[:, n0:])
    zt = z[target]
    n_times = zt.size
    before, after = _window_samples(window, sfreq)
    distance = max(1, int(round(min_distance * sfreq)))
    peaks, _ = find_peaks(zt, height=threshold, distance=distance)
    counts = dict(n_candidates=len(peaks), n_edge=0, n_overlap=0, n_not_isolated=0)

    keep = []
    others = np.abs(np.delete(z, target, axis=0)) if n_regions > 1 else None
    for p in peaks:
        start, stop = p - before, p + after + 1
        if start < 0 or stop > n_times:
            counts["n_edge"] += 1
            continue
        if exclusive:
            lo, hi = start - distance, stop + distance
            neighbours = peaks[(peaks > lo) & (peaks < hi)]
            if len(neighbours) > 1:
                counts["n_overlap"] += 1
                continue
        if isolation is not None and others is not None:
            if others[:, start:stop].max() > isolation:
                counts["n_not_isolated"] += 1
                continue
        keep.append(p)
    keep = np.array(keep, int)
    counts["n_spikes"] = len(keep)

    x = signals[target, n0:] - median[target]
    idx = keep[:, np.newaxis] + np.arange(-before, after + 1)
    waveforms = x[idx] if len(keep) else np.empty((0, before + after + 1))
    if normalize and len(keep):
        waveforms = waveforms / waveforms[:, before : before + 1]
    # sub-sample peak time by a parabola through the three samples at the peak
    delta = np.zeros(len(keep))
    inner = (keep > 0) & (keep < n_times - 1)
    if inner.any():
        k = keep[inner]
        y0, y1, y2 = x[k - 1], x[k], x[k + 1]
        denom = y0 - 2 * y1 + y2
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0)
        delta[inner] = np.clip(d, -0.5, 0.5)
    peak_times = (n0 + keep + delta) / sfreq
    logger.debug(
        f"Region {target}: {counts['n_candidates']} candidate spikes, kept "
        f"{counts['n_spikes']} ({counts['n_edge']} at the edges, "
        f"{counts['n_overlap']} doublets, {counts['n_not_isolated']} not isolated)."
    )
    if return_counts:
        return waveforms, peak_times, counts
    return waveforms, peak_times


@verbose
def extract_background(
    signals,
    sfreq,
    *,
    length=1.0,
    transient=1.0,
    regions=None,
    threshold=6.0,
    guard=0.2,
    n_segments=None,
    sfreq_out=None,
    seed=0,
    verbose=None,
):
    """Cut spike-free background segments out of region signals.

    Each region's signal after the transient is tiled into consecutive,
    non-overlapping segments of ``length`` seconds. A segment is kept if the
    region's absolute robust z-score (see :func:`robust_zscore`) stays at or
    below ``threshold`` over the segment and ``guard`` seconds on each side
    (so no spike, nor the rise or the slow wave of one, leaks in).

    Parameters
    ----------
    signals : array, shape (n_regions, n_times)
        The region signals.
    sfreq : float
        Their sampling rate in Hz.
    length : float
        Segment length in seconds; ``n_times = round(length * sfreq)``.
    transient : float
        Initial duration to discard, in seconds.
    regions : array-like of int | None
        Rows of ``signals`` to take segments from (default: all).
    threshold : float
        Largest absolute robust z-score allowed in and around a segment.
    guard : float
        Spike-free margin required on each side of a segment, in seconds.
    n_segments : int | None
        If given, return at most this many segments, drawn at random (with
        ``seed``) among all the spike-free ones; else return them all.
    sfreq_out : float | None
        If given, resample the signals to this rate first.
    seed : int
        Seed of the random selection (used only with ``n_segments``).
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    segments : ndarray, shape (n_segments, n_times)
        The segments, in the unit of ``signals``, relative to each region's
        median (its resting level), in (region, time) order.
    seg_regions : ndarray of int, shape (n_segments,)
        The region (row of ``signals``) of each segment.
    onsets : ndarray, shape (n_segments,)
        The onset of each segment in seconds from the first sample of
        ``signals``.

    See Also
    --------
    simulate_jansen_rit, extract_spikes, build_waveform_library

    Examples
    --------
    >>> from mne_brainforge.simulation import extract_background, simulate_jansen_rit
    >>> signals, sfreq = simulate_jansen_rit("connectivity_76", 5, sfreq_out=500.0)
    >>> segments, seg_regions, onsets = extract_background(
    ...     signals, sfreq, length=1.0, n_segments=4)
    >>> segments.shape
    (4, 500)
    """
    signals, sfreq = _check_signals(signals, sfreq)
    n_regions = signals.shape[0]
    length = _check_nonneg("length", length)
    if length <= 0:
        raise ValueError(f"length must be a positive number of seconds, got {length}.")
    transient = _check_nonneg("transient", transient)
    threshold = _check_nonneg("threshold", threshold)
    guard = _check_nonneg("guard", guard)
    if n_segments is not None:
        if isinstance(n_segments, (bool, np.bool_)) or not isinstance(
            n_segments, (int, np.integer)
        ):
            raise TypeError("n_segments must be an int or None.")
        if n_segments < 0:
            raise ValueError(f"n_segments must be non-negative, got {n_segments}.")
    if regions is None:
        regions = np.arange(n_regions)
    regions = np.atleast_1d(np.asarray(regions))
    if regions.size == 0:
        regions = regions.astype(int)
    if regions.dtype.kind not in "iu":
        raise TypeError("regions must be integers.")
    if regions.size and (regions.min() < 0 or regions.max() >= n_regions):
        raise ValueError(
            f"regions must be in [0, {n_regions - 1}], got {regions.tolist()}."
        )
    signals, sfreq = _maybe_resample(signals, sfreq, sfreq_out)
    n0 = int(round(transient * sfreq))
    n_len = int(round(length * sfreq))
    n_guard = int(round(guard * sfreq))
    if n_len < 1:
        raise ValueError(f"length ({length} s) is shorter than one sample.")
    if n0 >= signals.shape[1]:
        raise ValueError(
            f"transient ({transient} s) is longer than the signals "
            f"({signals.shape[1] / sfreq:.3f} s)."
        )
    z, median = robust_zscore(signals[:, n0:])
    n_times = z.shape[1]
    loud = np.abs(z[regions]) > threshold
    # cumulative count of loud samples, to test each guarded span in O(1)
    cum = np.concatenate(
        [np.zeros((len(regions), 1), int), np.cumsum(loud, axis=1)], axis=1
    )
    starts = np.arange(n_guard, n_times - n_len - n_guard + 1, n_len)
    found = []
    for i, r in enumerate(regions):
        if not len(starts):
            break
        n_loud = cum[i, starts + n_len + n_guard] - cum[i, starts - n_guard]
        found.extend((int(r), int(s)) for s in starts[n_loud == 0])
    if n_segments is not None and len(found) > n_segments:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(found), n_segments, replace=False))
        found = [found[k] for k in pick]
    seg_regions = np.array([r for r, _ in found], int)
    onset_samples = np.array([s for _, s in found], int)
    if len(found):
        idx = onset_samples[:, np.newaxis] + np.arange(n_len)
        segments = (
            signals[seg_regions[:, np.newaxis], n0 + idx]
            - median[seg_regions][:, np.newaxis]
        )
    else:
        segments = np.empty((0, n_len))
    onsets = (n0 + onset_samples) / sfreq
    logger.debug(f"{len(found)} background segments of {length} s.")
    return segments, seg_regions, onsets
