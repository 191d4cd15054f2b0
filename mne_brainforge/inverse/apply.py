"""BrainForge for Evoked, Raw and Epochs: the network's prior, the data's estimate.

Drop-in alternatives to :func:`mne.minimum_norm.apply_inverse`,
:func:`~mne.minimum_norm.apply_inverse_raw` and
:func:`~mne.minimum_norm.apply_inverse_epochs`; all three share one core
(:mod:`mne_brainforge.inverse._core`).
"""

import mne
from mne.epochs import BaseEpochs
from mne.io import BaseRaw
from mne.utils import logger, verbose

from ..utils import check_option
from . import _core
from ._core import (
    _check_start_stop,
    _network_prior,
    _prepare,
    _solve_evoked,
    _solve_kernel,
)
from .sparse_bayes import N_ITER, PRIOR_MODES

_COMMON_PARAMS = """\
    forward : mne.Forward
        EEG forward model on the source space the model was trained for (e.g.
        :func:`mne_brainforge.make_fsaverage_forward`). Free orientation is
        converted to cortex-normal.
    model : None | str | path-like | BrainForgeModel
        The network: None for the default pretrained model
        (:func:`mne_brainforge.load_pretrained`), the name of registered
        pretrained weights (:func:`mne_brainforge.list_weights`), the path of
        a model file (:meth:`BrainForgeModel.save
        <mne_brainforge.nn.BrainForgeModel.save>`), or a model (e.g. from
        :func:`mne_brainforge.training.train_model`).
    noise_cov : mne.Covariance | None
        The noise covariance that whitens data and gain (e.g. from
        :func:`mne.compute_covariance` on a baseline); None uses an ad-hoc
        diagonal covariance (:func:`mne.make_ad_hoc_cov`), as MNE does. Its
        overall scale is learned from the data either way.
    pick_ori : None | 'normal'
        Both give the signed cortex-normal estimate (fixed-orientation
        sources).
    prior_mode : 'evidence' | 'weight' | 'prior' | 'flat'
        How the network's prior is used: ``'evidence'`` (default) solves from
        the prior and from a flat prior and keeps the one whose marginal
        likelihood of the data is larger (the log says which won);
        ``'weight'`` averages both by their evidences; ``'prior'`` uses the
        network's prior only; ``'flat'`` ignores the network (plain
        sparse Bayesian learning).
    n_iter : int
        Largest number of iterations of each sparse Bayesian solve.
    depth : float
        Depth-weighting exponent of the flat prior (see
        :func:`~mne_brainforge.inverse.sparse_bayes.prepare_sparse_bayes`).
    patch_widths : sequence of float | "auto"
        The dictionary the solve selects from (mm): 0 for single dipoles,
        ``w > 0`` for geodesic Gaussian patches of standard deviation ``w`` on
        every source. The default ``(0,)`` is classical Champagne (fastest and
        sharpest for a focal source, but an extended source comes back as
        scattered dipoles); :data:`~mne_brainforge.inverse.PATCH_WIDTHS`
        ``(5, 10)`` recovers extended sources (measured in the README) at
        about three times the cost; ``"auto"`` solves with both apart and
        keeps the solution of larger evidence (the lowest classic localization
        error of the three on benchmark v2's cases, at the cost of both).
"""

_COMMON_NOTES = """\
    The estimate: the network turns the data into scalp maps and, through its
    CNN and Transformer, into a prior over the sources (its region energies,
    spread smoothly over the cortex with a floor, see
    :func:`mne_brainforge.nn.prior.source_prior`); a noise-whitened sparse
    Bayesian (Champagne) solve, started from that prior, makes the estimate
    from the data (:mod:`mne_brainforge.inverse.sparse_bayes`). The data
    decide: unless ``prior_mode`` says otherwise the solve is also run from a
    flat prior and the one with the larger evidence is kept, so a misleading
    network costs nothing but time.

    EEG is modelled reference-free: data and gain are compared after the same
    average reference (a projector, added if the data have none), so the
    estimate does not depend on the recording reference (linked mastoids, a
    single electrode, ...; a reference channel that is zero throughout is
    kept). Other projectors in ``info['projs']`` (SSP or other artifact
    vectors), active or not, are applied to the data and to the gain, as MNE's
    inverse operators do.

    Channels used: EEG channels of the data that are in the forward and not
    in ``info['bads']``, matched by name (their order in the data does not
    matter). Forward channels missing from the data are left out, as are
    flat channels (with a warning); non-EEG channels (MEG, EOG, ECG, stim,
    ...) and EEG channels the forward lacks are ignored. At least 8 channels
    are needed. NaN or infinite values in the channels used are an error.

    For the prior the data are resampled to the network's rate and analysed
    in half-overlapping windows (data shorter than a window are zero-padded),
    each window counting with its data power. The solve works on the data at
    their own rate and bandwidth: the estimate has the data's times. The
    inputs are never modified.
"""


def _common_notes(func):
    """Put the parameters and notes all three functions share where the docstring says so."""
    func.__doc__ = func.__doc__.replace(
        "    {common_params}\n", _COMMON_PARAMS
    ).replace("    {common_notes}\n", _COMMON_NOTES)
    return func


def _check_inst(inst, kind, name, hint):
    if not isinstance(inst, kind):
        raise TypeError(
            f"{name} must be an instance of {hint}, got {type(inst).__name__}."
        )


@verbose
@_common_notes
def apply_brainforge_inverse(
    evoked,
    forward,
    model=None,
    noise_cov=None,
    *,
    pick_ori=None,
    prior_mode="evidence",
    n_iter=N_ITER,
    depth=0.8,
    patch_widths=(0,),
    return_residual=False,
    return_uncertainty=False,
    verbose=None,
):
    """Estimate cortical sources of an Evoked with BrainForge.

    Parameters
    ----------
    evoked : mne.Evoked
        EEG data with channel positions (a montage).
    {common_params}
    return_residual : bool
        Also return the data minus what the estimate explains.
    return_uncertainty : bool
        Also return the posterior standard deviation of each source.
    %(verbose)s

    Returns
    -------
    stc : mne.SourceEstimate
        Posterior mean dipole moments (A·m) normal to the cortex, on the
        forward's vertices, with the evoked's times (sparse: most sources are
        exactly zero).
    residual : mne.Evoked
        Only with ``return_residual``: ``P (data - L J)`` on the channels used,
        unwhitened, ``P`` the projectors (average reference included); the log
        gives the explained variance of the whitened data, like a dipole fit's
        goodness of fit.
    std : mne.SourceEstimate
        Only with ``return_uncertainty``: the posterior standard deviation
        (A·m) of each source, one time point.

    See Also
    --------
    apply_brainforge_inverse_raw, apply_brainforge_inverse_epochs
    compare_inverse_methods
    mne.minimum_norm.apply_inverse

    Notes
    -----
    {common_notes}

    See the tutorial :ref:`sphx_glr_auto_tutorials_00_quickstart.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> fwd = bf.make_fsaverage_forward(evoked.info)
    >>> stc = bf.apply_brainforge_inverse(evoked, fwd)
    >>> stc, residual = bf.apply_brainforge_inverse(
    ...     evoked, fwd, noise_cov, return_residual=True)
    """
    _check_inst(evoked, mne.Evoked, "evoked", "mne.Evoked")
    setup = _prepare(
        evoked.info,
        forward,
        model,
        noise_cov,
        pick_ori,
        scan=lambda picks: [evoked.data[picks]],
        n_samples=len(evoked.times),
        depth=depth,
        patch_widths=patch_widths,
    )
    data = evoked.data[setup.picks]
    prior = _network_prior(setup, lambda a, b: data[:, a:b], data.shape[1])
    return _solve_evoked(
        setup,
        evoked,
        prior,
        prior_mode=_check_prior_mode(prior_mode),
        n_iter=n_iter,
        learn_noise=True,
        return_residual=return_residual,
        return_uncertainty=return_uncertainty,
    )


@verbose
@_common_notes
def apply_brainforge_inverse_raw(
    raw,
    forward,
    model=None,
    noise_cov=None,
    *,
    pick_ori=None,
    prior_mode="evidence",
    n_iter=N_ITER,
    depth=0.8,
    patch_widths=(0,),
    start=None,
    stop=None,
    verbose=None,
):
    """Estimate cortical sources of continuous data with BrainForge.

    Parameters
    ----------
    raw : mne.io.Raw
        EEG data with channel positions (a montage); preloaded or not (data on
        disk are read in chunks).
    {common_params}
    start : int | None
        First sample (index into ``raw.times``, like
        :func:`mne.minimum_norm.apply_inverse_raw`); None for the first.
    stop : int | None
        Sample after the last (exclusive); None for the end.
    %(verbose)s

    Returns
    -------
    stc : mne.SourceEstimate
        Dipole moments (A·m) normal to the cortex, from ``raw.times[start]``
        at the data's sampling rate, in the delayed ``(kernel, data)`` form
        that :class:`mne.SourceEstimate` supports: the sensor data and the
        linear kernel of the sparse Bayesian estimate; ``stc.data`` (or any
        method that needs it, ``print(stc)`` included: MNE's summary reports
        the data size) forms the full array on first use.

    See Also
    --------
    apply_brainforge_inverse, apply_brainforge_inverse_epochs
    mne.minimum_norm.apply_inverse_raw

    Notes
    -----
    {common_notes}

    One set of source variances is learned for the whole span (``start`` to
    ``stop``) from its data covariance, so the span should be one state (a
    seizure onset, a block of a task); estimate segments separately with
    ``start``/``stop`` when the sources change.

    Memory: the computation holds one batch of network windows and the
    channels x channels data covariance at a time, and the returned estimate
    the sensor data of the span and a sources x channels kernel. The full
    source array (n_sources x n_samples: about 20484 x 8 bytes per
    sample on fsaverage: 2.5 GB per minute at 250 Hz) is only formed when
    ``stc.data`` is accessed; use ``start`` and ``stop`` to estimate a segment
    (:meth:`mne.SourceEstimate.crop` of an estimate in this form leaves
    ``stc.times`` at the uncropped length, in MNE-Python 1.13 at least, so that
    e.g. plotting fails). Annotations (``BAD_`` segments) are not treated
    specially.

    See the tutorial :ref:`sphx_glr_auto_tutorials_03_continuous_data.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> fwd = bf.make_fsaverage_forward(raw.info)
    >>> stc = bf.apply_brainforge_inverse_raw(raw, fwd)
    >>> start, stop = raw.time_as_index([10.0, 20.0])
    >>> segment = bf.apply_brainforge_inverse_raw(
    ...     raw, fwd, start=start, stop=stop)

    Do not crop the delayed form: ``stc.copy().crop(10, 20)`` keeps every
    time point in ``stc.times`` (MNE-Python 1.13). Estimate the segment with
    ``start``/``stop`` as above, or form the data first (for short data):

    >>> full = stc.copy()
    >>> _ = full.data  # the full (n_sources, n_times) array
    >>> segment = full.crop(10.0, 20.0)
    """
    hint = (
        "mne.io.BaseRaw (for Epochs use apply_brainforge_inverse_epochs, for Evoked "
        "apply_brainforge_inverse)"
    )
    _check_inst(raw, BaseRaw, "raw", hint)
    start, stop = _check_start_stop(start, stop, raw.n_times)
    n_samples = stop - start

    def scan(picks):
        chunk = _core.CHUNK_SAMPLES
        for a in range(0, n_samples, chunk):
            yield raw.get_data(picks, start + a, min(start + a + chunk, stop))

    setup = _prepare(
        raw.info,
        forward,
        model,
        noise_cov,
        pick_ori,
        scan,
        n_samples,
        depth,
        patch_widths,
    )
    prior = _network_prior(
        setup, lambda a, b: raw.get_data(setup.picks, start + a, start + b), n_samples
    )
    rows = [raw.ch_names.index(name) for name in setup.solver.ch_names]

    def blocks():
        chunk = _core.CHUNK_SAMPLES
        for a in range(start, stop, chunk):
            yield raw.get_data(rows, a, min(a + chunk, stop))

    kernel = _solve_kernel(
        setup, blocks(), prior, prior_mode=_check_prior_mode(prior_mode), n_iter=n_iter
    )
    return _kernel_stc(
        setup,
        kernel,
        raw.get_data(rows, start, stop),
        start / raw.info["sfreq"],
        raw.info["sfreq"],
    )


@verbose
@_common_notes
def apply_brainforge_inverse_epochs(
    epochs,
    forward,
    model=None,
    noise_cov=None,
    *,
    pick_ori=None,
    prior_mode="evidence",
    n_iter=N_ITER,
    depth=0.8,
    patch_widths=(0,),
    return_generator=False,
    verbose=None,
):
    """Estimate cortical sources of each epoch with BrainForge.

    Parameters
    ----------
    epochs : mne.Epochs
        EEG data with channel positions (a montage); preloaded or not.
    {common_params}
    return_generator : bool
        Return a generator of estimates (computed one epoch at a time as it
        is consumed) instead of a list.
    %(verbose)s

    Returns
    -------
    stcs : list of mne.SourceEstimate | generator
        One estimate per (good) epoch, with the epochs' times: each epoch gets
        its own prior and solve (the same estimate as
        :func:`apply_brainforge_inverse` of that epoch's data as an evoked of
        ``nave=1``), in the delayed ``(kernel, data)`` form of
        :class:`mne.SourceEstimate` (see :func:`apply_brainforge_inverse_raw`).

    See Also
    --------
    apply_brainforge_inverse, apply_brainforge_inverse_raw
    mne.minimum_norm.apply_inverse_epochs

    Notes
    -----
    {common_notes}

    The channels (bads, flat channels) are decided once over all epochs,
    before any estimate is computed (Epochs that are not preloaded are read
    twice), so that NaN values raise an error at once, also with
    ``return_generator``. Epochs that are not preloaded are read through a
    copy, so the rejection of bad epochs happens on the fly as in MNE and the
    given Epochs are not changed.

    See the tutorial :ref:`sphx_glr_auto_tutorials_03_continuous_data.py`.

    Examples
    --------
    >>> import mne
    >>> import mne_brainforge as bf
    >>> fwd = bf.make_fsaverage_forward(epochs.info)
    >>> stcs = bf.apply_brainforge_inverse_epochs(epochs, fwd)  # a list

    One estimate at a time, e.g. for the time courses of some labels over
    many epochs:

    >>> stcs = bf.apply_brainforge_inverse_epochs(
    ...     epochs, fwd, return_generator=True)
    >>> tcs = mne.extract_label_time_course(stcs, labels, fwd["src"])
    """
    hint = (
        "mne.BaseEpochs (for Raw use apply_brainforge_inverse_raw, for Evoked "
        "apply_brainforge_inverse)"
    )
    _check_inst(epochs, BaseEpochs, "epochs", hint)
    setup = _prepare(
        epochs.info,
        forward,
        model,
        noise_cov,
        pick_ori,
        scan=lambda picks: _iter_epochs(epochs, picks),
        n_samples=len(epochs.times),
        depth=depth,
        patch_widths=patch_widths,
    )
    stcs = _epochs_gen(setup, epochs, _check_prior_mode(prior_mode), n_iter)
    return stcs if return_generator else list(stcs)


def _iter_epochs(epochs, picks):
    """Each good epoch's data of channels ``picks``, without changing ``epochs``."""
    if epochs.preload:
        for k in range(len(epochs)):
            yield epochs.get_data(picks=picks, item=[k], copy=False)[0]
    else:
        for data in epochs.copy():  # iterating sets state: iterate a copy
            yield data[picks]


def _epochs_gen(setup, epochs, prior_mode, n_iter):
    rows = [epochs.ch_names.index(name) for name in setup.solver.ch_names]
    for k, data in enumerate(_iter_epochs(epochs, list(range(len(epochs.ch_names))))):
        logger.info(f"Processing epoch : {k + 1}")
        picked = data[setup.picks]
        prior = _network_prior(setup, lambda a, b, d=picked: d[:, a:b], picked.shape[1])
        kernel = _solve_kernel(
            setup, [data[rows]], prior, prior_mode=prior_mode, n_iter=n_iter
        )
        yield _kernel_stc(
            setup, kernel, data[rows], epochs.times[0], epochs.info["sfreq"]
        )


def _kernel_stc(setup, kernel, data, tmin, sfreq):
    solver = setup.solver
    if solver.n_cortex < kernel.shape[0]:  # deep sources: their norms are needed
        return solver.to_stc(kernel @ data, tmin, 1.0 / sfreq)
    return mne.SourceEstimate(
        (kernel, data),
        solver.vertices,
        tmin=tmin,
        tstep=1.0 / sfreq,
        subject=solver.subject,
        verbose=False,
    )


def _check_prior_mode(prior_mode):
    return check_option("prior_mode", prior_mode, PRIOR_MODES)
