"""Machinery shared by the BrainForge inverse functions.

One path for Evoked, Raw and Epochs: :func:`_prepare` checks the inputs, picks
the channels and prepares the whitened sparse Bayesian solve once;
:func:`_network_prior` runs the network over one 2-D block of data (channels x
samples, read through a callback so that Raw on disk is read in chunks) and
turns its region output into a prior over the sources; the solve of
:mod:`~mne_brainforge.inverse.sparse_bayes`, driven by the data, makes the
estimate, and the evidence decides between that prior and a flat one.
"""

import logging
import operator
import os
import weakref
from pathlib import Path

import mne
import numpy as np
from mne.utils import logger, warn

from ..nn.prior import diffusion_operator, region_energy, source_prior, torch_operator
from ..utils import rational_ratio
from . import _checks
from ._checks import (
    MIN_CHANNELS,
    check_amplitudes,
    check_biosemi_codes,
    check_covariance_channels,
    check_duplicate_positions,
    check_model_fit,
    check_positions_match,
    check_source_space,
    railed_channels,
)
from ._gain import _FIXED_GAINS, _fixed_gain  # noqa: F401 (tests reach them here)
from .sparse_bayes import _apply as _sparse_bayes_apply
from .sparse_bayes import posterior_kernel, prepare_sparse_bayes, solve_covariance

#: Windows per ``predict_regions`` call.
BATCH_WINDOWS = 32
#: Samples per read when scanning data and accumulating the data covariance.
CHUNK_SAMPLES = 32768
#: Show a progress bar from this many windows on.
PROGRESS_MIN_WINDOWS = 100
#: A channel whose peak-to-peak amplitude is below this fraction of the median
#: channel's is flat.
FLAT_RATIO = 1e-9


def _load_model(model):
    """Resolve the ``model`` argument to a BrainForgeModel."""
    from ..nn import BrainForgeModel

    if isinstance(model, BrainForgeModel):
        return model
    from ..weights import list_weights, load_pretrained

    if model is None:
        return load_pretrained()
    if isinstance(model, mne.Covariance):
        raise TypeError(
            "The third argument is the model; pass the covariance by name: "
            "apply_brainforge_inverse(evoked, forward, noise_cov=noise_cov)."
        )
    if isinstance(model, str) and model in list_weights():
        return load_pretrained(model)
    if isinstance(model, (str, os.PathLike)) and Path(model).expanduser().is_file():
        return BrainForgeModel.load(Path(model).expanduser())
    what = (
        " (no such file or registered name)"
        if isinstance(model, (str, os.PathLike))
        else ""
    )
    raise ValueError(
        "model must be None (the default pretrained model), the name of pretrained "
        f"weights (one of {list_weights()}, see mne_brainforge.list_weights()), the path "
        "of a model file (BrainForgeModel.save) or a BrainForgeModel (train_model, "
        f"BrainForgeModel.load, load_pretrained); got {model!r}{what}."
    )


def _check_common(forward, noise_cov, pick_ori):
    if not isinstance(forward, mne.Forward):
        raise TypeError(
            f"forward must be an mne.Forward, got {type(forward).__name__}."
        )
    if noise_cov is not None and not isinstance(noise_cov, mne.Covariance):
        raise TypeError(
            f"noise_cov must be an mne.Covariance or None, got {type(noise_cov).__name__}."
        )
    if pick_ori not in (None, "normal"):
        raise ValueError(
            f"pick_ori must be None or 'normal' (fixed orientation), got {pick_ori!r}."
        )


def _ratio(sfreq_from, sfreq_to):
    """``(up, down)`` with ``sfreq_to = sfreq_from * up / down`` (coprime)."""
    if np.isclose(sfreq_from, sfreq_to):
        return 1, 1
    return rational_ratio(sfreq_from, sfreq_to)


def _read_extended(read, n, a, b):
    """Samples ``[a, b)`` of the signal ``read`` (length ``n``) extended at both ends.

    Beyond the ends the signal is mirrored about its end value (odd reflection,
    continuous in value and slope, no step for the resampling filter to ring
    on), for at most ``n - 1`` samples, and held constant after that.
    """
    pad_l, pad_r = max(-a, 0), max(b - n, 0)
    if not pad_l and not pad_r:
        return read(a, b)
    lo = 0 if pad_l else min(a, max(n - pad_r - 1, 0))
    hi = n if pad_r else max(b, min(pad_l + 1, n))
    x = read(lo, hi)
    reflect = (min(pad_l, n - 1) if lo == 0 else 0, min(pad_r, n - 1) if hi == n else 0)
    x = np.pad(x, ((0, 0), reflect), mode="reflect", reflect_type="odd")
    x = np.pad(x, ((0, 0), (pad_l - reflect[0], pad_r - reflect[1])), mode="edge")
    first = lo - pad_l  # index of x[:, 0] in the extended signal
    return x[:, a - first : b - first]


def _resample_span(read, n_in, up, down, o0, o1):
    """Samples ``[o0, o1)`` of the signal ``read`` (length ``n_in``) resampled by ``up/down``.

    Polyphase FIR resampling (:func:`scipy.signal.resample_poly`) of a stretch
    of input that reaches past the filter on both sides and starts on the
    polyphase grid, so that any span gives the same samples as resampling the
    whole signal at once: memory is bounded by the span, not the signal.
    """
    if up == down == 1:
        return read(o0, o1)
    from scipy.signal import resample_poly

    half_len = 10 * max(
        up, down
    )  # resample_poly's filter half-length (upsampled samples)
    margin = half_len // up + 2  # input samples the filter reaches
    q0 = o0 // up - (margin // down + 1)  # output q0 * up <-> input q0 * down
    i0 = q0 * down
    i1 = -(-(o1 - 1) * down // up) + margin + 1
    seg = _read_extended(read, n_in, i0, i1)
    out = resample_poly(seg, up, down, axis=1, padtype="constant")
    return out[:, o0 - q0 * up : o1 - q0 * up]


def _windows(n_samples, n_times):
    """Window starts with 50% overlap covering ``n_samples`` (padded at the end)."""
    if n_samples <= n_times:
        return [0]
    hop = n_times // 2
    starts = list(range(0, n_samples - n_times + 1, hop))
    if starts[-1] + n_times < n_samples:
        starts.append(n_samples - n_times)
    return starts


class _Setup:
    """What estimating one data set needs: the network, its channels, the solve."""

    def __init__(self, model, sfreq, picks, ch_names, ch_pos, proj, solver):
        self.model, self.sfreq = model, float(sfreq)
        self.picks, self.ch_names, self.ch_pos = picks, ch_names, ch_pos
        self.proj, self.solver = proj, solver
        self.operator = _diffusion(model)


_DIFFUSION = weakref.WeakKeyDictionary()


def _diffusion(model):
    """The model's mesh diffusion operator (torch), built once per parcellation."""
    parcellation = model.parcellation
    if parcellation not in _DIFFUSION:
        _DIFFUSION[parcellation] = torch_operator(
            diffusion_operator(parcellation.graph)
        )
    return _DIFFUSION[parcellation]


def _scan(blocks, names):
    """Per-channel finiteness, peak-to-peak, all-zero and samples at the extremes.

    Returns ``ptp``, ``zero``, ``n_samples`` and ``at_extremes``: the number of
    samples equal to the channel's minimum or maximum (many for a railed one).
    """
    finite = np.ones(len(names), bool)
    lo = np.full(len(names), np.inf)
    hi = np.full(len(names), -np.inf)
    n_lo = np.zeros(len(names), int)
    n_hi = np.zeros(len(names), int)
    n_samples = 0
    for block in blocks:
        n_samples += block.shape[1]
        ok = np.isfinite(block)
        finite &= ok.all(axis=1)
        block = np.where(ok, block, 0.0)
        b_lo, b_hi = block.min(axis=1), block.max(axis=1)
        at_lo = np.sum(block == b_lo[:, None], axis=1)
        at_hi = np.sum(block == b_hi[:, None], axis=1)
        n_lo = np.where(b_lo < lo, at_lo, n_lo + np.where(b_lo == lo, at_lo, 0))
        n_hi = np.where(b_hi > hi, at_hi, n_hi + np.where(b_hi == hi, at_hi, 0))
        lo, hi = np.minimum(lo, b_lo), np.maximum(hi, b_hi)
    bad = [n for n, f in zip(names, finite) if not f]
    if bad:
        raise ValueError(
            f"The data of channel(s) {', '.join(bad)} contain NaN or infinite values. "
            "Mark them as bad (info['bads']) or interpolate them "
            "(interpolate_bads) first."
        )
    ptp = hi - lo
    zero = (lo == 0) & (hi == 0)
    return ptp, zero, n_samples, n_lo + n_hi


def _flat_channels(names, ptp, zero):
    """Names of the flat channels to leave out (the recording reference is kept)."""
    flat = ptp <= FLAT_RATIO * np.median(ptp)
    flat_names = [n for n, f in zip(names, flat) if f]
    zero_names = [n for n, z in zip(names, zero) if z]
    if len(zero_names) == 1 and len(flat_names) >= 1 and zero_names[0] in flat_names:
        logger.info(
            f"Keeping {zero_names[0]}, zero throughout: the recording reference."
        )
        flat_names.remove(zero_names[0])
    return flat_names


def _projector(projs, ch_names):
    """Average reference plus the data's projectors, on these channels.

    The span of a constant vector and of every projection vector restricted to
    ``ch_names`` (MNE's own restriction rule), projected out:
    ``I - U @ U.T``. Average-reference projectors of the data are then
    redundant, other projectors (SSP/ICA-derived artifact vectors) are applied.
    """
    n = len(ch_names)
    index = {name: k for k, name in enumerate(ch_names)}
    vecs = [np.full(n, 1 / np.sqrt(n))]
    for proj in projs:
        cols = [
            (index[name], c)
            for c, name in enumerate(proj["data"]["col_names"])
            if name in index
        ]
        if not cols:
            continue
        rows, sel = map(list, zip(*cols))
        for vector in np.atleast_2d(proj["data"]["data"]):
            v = np.zeros(n)
            v[rows] = vector[sel]
            norm = np.linalg.norm(v)
            if norm > 0:
                vecs.append(v / norm)
    U, S, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    U = U[:, S / S[0] > 1e-2]  # MNE's make_projector threshold
    if len(vecs) > 1:
        logger.info(
            f"Projecting out {U.shape[1] - 1} projection vector(s) and the average"
        )
    return np.eye(n) - U @ U.T


def _positions(info, picks, forward, ch_names):
    """The data's channel positions (checked against the forward's), else the forward's."""
    pos = np.array([info["chs"][p]["loc"][:3] for p in picks], float)
    valid = np.all(np.isfinite(pos), axis=1) & np.any(pos != 0, axis=1)
    if valid.all():
        check_positions_match(ch_names, pos, forward)
        return pos
    fwd_chs = {ch["ch_name"]: ch["loc"][:3] for ch in forward["info"]["chs"]}
    pos = np.array([fwd_chs[name] for name in ch_names], float)
    if not (np.all(np.isfinite(pos)) and np.all(np.any(pos != 0, axis=1))):
        raise ValueError(
            "The EEG channels have no positions; set a montage (inst.set_montage)."
        )
    logger.info("The data have no channel positions; using the forward's.")
    return pos


def _prepare(
    info, forward, model, noise_cov, pick_ori, scan, n_samples, depth, patch_widths
):
    """Check the inputs and pick the channels the network uses.

    Parameters
    ----------
    info : mne.Info
        Of the data.
    scan : callable
        ``scan(picks)`` -> iterable of 2-D arrays (channels ``picks`` x samples)
        covering all the data to be processed (to find NaN, flat and railed
        channels and implausible amplitudes).
    n_samples : int
        Samples of one data set (an evoked, an epoch, the raw span).

    Returns
    -------
    setup : _Setup
    """
    _check_common(forward, noise_cov, pick_ori)
    eeg = mne.pick_types(info, meg=False, eeg=True, exclude=[])
    if len(eeg) == 0:
        types = ", ".join(info.get_channel_types(unique=True)) or "none"
        raise ValueError(
            f"The data have no EEG channels (channel types: {types}). BrainForge "
            "estimates sources from EEG; MEG is not supported."
        )
    model = _load_model(model)
    check_source_space(model, forward)
    check_biosemi_codes(info)
    gain, fwd_names = _fixed_gain(forward)
    eeg_names = {info["ch_names"][p] for p in eeg}
    bads = set(info["bads"])
    candidates = [n for n in fwd_names if n in eeg_names and n not in bads]
    missing = [n for n in fwd_names if n not in eeg_names or n in bads]
    ignored = sorted(eeg_names - set(fwd_names) - bads)
    if missing:
        logger.info(
            f"{len(missing)} forward channel(s) not used (bad or not in the data): "
            f"{', '.join(missing)}"
        )
    if ignored:
        logger.info(
            f"{len(ignored)} EEG channel(s) not in the forward ignored: "
            f"{', '.join(ignored)}"
        )
    if candidates:
        picks = [info["ch_names"].index(n) for n in candidates]
        ptp, zero, n_scanned, at_extremes = _scan(scan(picks), candidates)
        flat = _flat_channels(candidates, ptp, zero) if n_scanned > 1 else []
        if flat:
            warn(
                f"Leaving out {len(flat)} flat EEG channel(s) (no signal): {', '.join(flat)}. "
                "Mark them as bad (info['bads']) to silence this warning."
            )
        railed = railed_channels(candidates, at_extremes, n_scanned, ptp, flat)
        if railed:
            warn(
                f"Leaving out {len(railed)} railed EEG channel(s) (at their extreme "
                f"value for at least {100 * _checks.RAIL_FRACTION:g}% of the samples: "
                f"a saturated amplifier or loose electrode): {', '.join(railed)}. "
                "Mark them as bad (info['bads']) to silence this warning."
            )
        check_amplitudes(ptp[[n not in flat and n not in railed for n in candidates]])
        candidates = [n for n in candidates if n not in flat and n not in railed]
    if len(candidates) < MIN_CHANNELS:
        raise ValueError(
            f"Only {len(candidates)} good, non-flat EEG channels are both in the data and "
            f"in the forward; BrainForge needs at least {MIN_CHANNELS} (check channel "
            "names, info['bads'] and that the forward was made for this montage)."
        )
    picks = [info["ch_names"].index(n) for n in candidates]
    proj = _projector(info["projs"], candidates)
    ch_pos = _positions(info, picks, forward, candidates)
    check_duplicate_positions(candidates, ch_pos)
    check_model_fit(model, len(candidates), info["sfreq"], info["lowpass"], n_samples)
    if noise_cov is not None:
        check_covariance_channels(noise_cov, candidates)
    # the solve uses exactly the network's channels: the left-out ones become bad
    solver_info = info.copy()
    with solver_info._unlock():
        solver_info["bads"] = [n for n in info["ch_names"] if n not in candidates]
    solver = prepare_sparse_bayes(
        solver_info,
        forward,
        noise_cov,
        depth=depth,
        patch_widths=patch_widths,
        verbose=False,
    )
    logger.info(
        f"BrainForge inverse: {len(candidates)} EEG channels, average reference, "
        f"whitened rank {solver.rank}"
    )
    return _Setup(model, info["sfreq"], picks, candidates, ch_pos, proj, solver)


def _network_prior(setup, read, n_samples):
    """The network's prior over the sources for one 2-D block of data.

    Parameters
    ----------
    setup : _Setup
        From :func:`_prepare`.
    read : callable
        ``read(a, b)`` -> samples ``[a, b)`` of the channels ``setup.picks``
        (shape ``(n_channels, b - a)``, ``0 <= a < b <= n_samples``).
    n_samples : int
        Length of the data.

    Returns
    -------
    prior : ndarray, shape (n_sources,)
        Relative prior variances (mean 1, :func:`~mne_brainforge.nn.prior.source_prior`)
        on the depth-scaled sources of the solve.

    Notes
    -----
    The data (projected, average-referenced) are resampled to the network's
    rate span by span and cut into half-overlapping windows (the last one
    zero-padded) that go through the network :data:`BATCH_WINDOWS` at a time;
    each window's region energies count with the window's data power. Memory:
    one batch of windows; the data are never held whole.
    """
    from tqdm.auto import tqdm

    model = setup.model
    n_times = model.n_times
    up, down = _ratio(setup.sfreq, model.sfreq)
    n_model = -(-n_samples * up // down)

    def read_projected(a, b):
        return setup.proj @ np.asarray(read(a, b), float)

    starts = _windows(n_model, n_times)
    energy = np.zeros(model.parcellation.n_regions)
    total = 0.0
    quiet = len(starts) < PROGRESS_MIN_WINDOWS or logger.level > logging.INFO
    with tqdm(
        total=len(starts), desc="BrainForge windows", unit="window", disable=quiet
    ) as bar:
        for k in range(0, len(starts), BATCH_WINDOWS):
            batch = starts[k : k + BATCH_WINDOWS]
            first, last = batch[0], min(batch[-1] + n_times, n_model)
            span = _resample_span(read_projected, n_samples, up, down, first, last)
            windows = np.zeros((len(batch), len(setup.ch_names), n_times))
            for w, start in enumerate(batch):
                chunk = span[:, start - first : start - first + n_times]
                windows[w, :, : chunk.shape[1]] = chunk
            power = np.sum(windows**2, axis=(1, 2))
            regions = model.predict_regions(windows, setup.ch_pos)
            energy += power @ region_energy(regions)
            total += power.sum()
            bar.update(len(batch))
    return source_prior(
        energy[np.newaxis] / max(total, 1e-300),
        model.parcellation,
        operator=setup.operator,
    )


def _depth_neutral(setup, prior):
    """The network's relative prior as physical variances of the solve's sources.

    The flat start of the solve is flat on depth-scaled sources; the network's
    prior reweights that start (so a flat network output is the flat solve).
    The network sees the cortex only: deep sources keep the flat start.
    """
    scale = setup.solver.depth_scale**2
    prior = np.concatenate([prior, np.ones(len(scale) - len(prior))])
    return prior * scale


def _solve_evoked(setup, evoked, prior, **kwargs):
    """The sparse Bayesian estimate of an Evoked (all returns of ``_apply``)."""
    return _sparse_bayes_apply(
        setup.solver, evoked, prior=_depth_neutral(setup, prior), **kwargs
    )


def _solve_kernel(setup, blocks, prior, *, prior_mode, n_iter):
    """Learn the source variances from data blocks; the linear kernel of the estimate.

    Parameters
    ----------
    setup : _Setup
        From :func:`_prepare`.
    blocks : iterable of ndarray, shape (n_channels, n)
        The data of ``setup.solver.ch_names`` (in that order), block by block:
        only their covariance is accumulated (bounded memory).
    prior : ndarray, shape (n_sources,)
        From :func:`_network_prior`.

    Returns
    -------
    kernel : ndarray, shape (n_sources, n_channels)
        Data of ``setup.solver.ch_names`` -> dipole moments (A·m).
    """
    solver = setup.solver
    cov, n = 0.0, 0
    for block in blocks:
        cov = cov + block @ block.T
        n += block.shape[1]
    cov = cov / max(n, 1)
    white_cov = solver.whitener @ cov @ solver.whitener.T
    result = solve_covariance(
        solver,
        white_cov,
        n,
        prior=_depth_neutral(setup, prior),
        prior_mode=prior_mode,
        n_iter=n_iter,
        learn_noise=True,
    )
    kernel = posterior_kernel(solver, result)
    residual = solver.whitener - solver.whitener @ solver.gain @ kernel
    explained = 1 - np.trace(residual @ cov @ residual.T) / np.trace(white_cov)
    logger.info(
        f"    Sparse Bayes: {np.count_nonzero(result.gamma)} active sources, "
        f"explained variance (whitened) {100 * explained:.1f} %"
    )
    return kernel


def _check_start_stop(start, stop, n_times):
    start = 0 if start is None else operator.index(start)
    stop = n_times if stop is None else operator.index(stop)
    if start < 0 or stop < 0:
        raise ValueError(
            f"start and stop must be >= 0 (samples), got {start} and {stop}."
        )
    stop = min(stop, n_times)
    if start >= stop:
        raise ValueError(
            f"start ({start}) must be smaller than stop ({stop}, at most "
            f"the {n_times} samples of the data)."
        )
    return start, stop
