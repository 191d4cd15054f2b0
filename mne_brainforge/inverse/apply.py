"""Apply a BrainForge network to Evoked, Raw and Epochs.

Drop-in alternatives to :func:`mne.minimum_norm.apply_inverse`,
:func:`~mne.minimum_norm.apply_inverse_raw` and
:func:`~mne.minimum_norm.apply_inverse_epochs`; all three share one core
(:mod:`mne_brainforge.inverse._core`).
"""

import mne
from mne.epochs import BaseEpochs
from mne.io import BaseRaw
from mne.utils import logger, verbose

from . import _core
from ._core import _check_start_stop, _estimate_regions, _prepare

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
        Accepted for drop-in compatibility with
        :func:`mne.minimum_norm.apply_inverse` workflows; the network does not
        use it (it was trained across noise models and SNRs).
    pick_ori : None | 'normal'
        Both give the signed cortex-normal estimate (the network estimates
        fixed-orientation sources).
"""

_COMMON_NOTES = """\
    The network was trained on average-referenced EEG, so the data are always
    average-referenced internally (on a copy) over the channels used: the
    estimate does not depend on the recording reference (linked mastoids, a
    single electrode, ...; a reference channel that is zero throughout is
    kept) and an average-reference projector is redundant. Other projectors
    in ``info['projs']`` (SSP or other artifact vectors), active or not, are
    applied to the data and to the forward, as MNE's inverse operators do.

    Channels used: EEG channels of the data that are in the forward and not
    in ``info['bads']``, matched by name (their order in the data does not
    matter). Forward channels missing from the data are left out, as are
    flat channels (with a warning); non-EEG channels (MEG, EOG, ECG, stim,
    ...) and EEG channels the forward lacks are ignored. At least 8 channels
    are needed. NaN or infinite values in the channels used are an error.

    The data are resampled to the network's rate, analysed in half-overlapping
    windows (Hann-tapered overlap-add; data shorter than a window are
    zero-padded), each window's estimate scaled to dipole moments by the
    least-squares fit of its forward projection to the data, and resampled
    back: the estimate has the data's times. The inputs are never modified.
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
    return_residual=False,
    verbose=None,
):
    """Estimate cortical sources of an Evoked with a BrainForge network.

    Parameters
    ----------
    evoked : mne.Evoked
        EEG data with channel positions (a montage).
    {common_params}
    return_residual : bool
        Also return the data minus what the estimate explains.
    %(verbose)s

    Returns
    -------
    stc : mne.SourceEstimate
        Dipole moments (A·m) normal to the cortex, on the forward's vertices:
        each region's estimated time course (the network's output) spread over
        its sources, with the evoked's times.
    residual : mne.Evoked
        Only with ``return_residual``: on the channels used (in the forward's
        order), the projected, average-referenced data minus the forward
        projection of the estimate.

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
    ...     evoked, fwd, return_residual=True)
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
    )
    data = evoked.data[setup.picks]
    regions = _estimate_regions(setup, lambda a, b: data[:, a:b], data.shape[1])
    stc = setup.make_stc(regions, evoked.times[0], lazy=False)
    if not return_residual:
        return stc
    residual = evoked.copy().pick(setup.ch_names)
    residual.data = setup.proj @ data - setup.region_gain @ regions
    return stc, residual


@verbose
@_common_notes
def apply_brainforge_inverse_raw(
    raw,
    forward,
    model=None,
    noise_cov=None,
    *,
    pick_ori=None,
    start=None,
    stop=None,
    verbose=None,
):
    """Estimate cortical sources of continuous data with a BrainForge network.

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
        that :class:`mne.SourceEstimate` supports: the region time courses and
        the one-hot region -> source kernel; ``stc.data`` (or any method that
        needs it, ``print(stc)`` included: MNE's summary reports the data
        size) forms the full array on first use.

    See Also
    --------
    apply_brainforge_inverse, apply_brainforge_inverse_epochs
    mne.minimum_norm.apply_inverse_raw

    Notes
    -----
    {common_notes}

    Memory: the computation holds the region time courses (n_regions x
    n_samples at the network's rate and at the data's rate) and one batch of
    windows at a time, never the whole data, so hours of data are fine. The
    full source array (n_sources x n_samples: about 20484 x 8 bytes per
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

    setup = _prepare(raw.info, forward, model, noise_cov, pick_ori, scan, n_samples)
    regions = _estimate_regions(
        setup, lambda a, b: raw.get_data(setup.picks, start + a, start + b), n_samples
    )
    return setup.make_stc(regions, start / raw.info["sfreq"], lazy=True)


@verbose
@_common_notes
def apply_brainforge_inverse_epochs(
    epochs,
    forward,
    model=None,
    noise_cov=None,
    *,
    pick_ori=None,
    return_generator=False,
    verbose=None,
):
    """Estimate cortical sources of each epoch with a BrainForge network.

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
        One estimate per (good) epoch, with the epochs' times, each exactly
        what :func:`apply_brainforge_inverse` gives for that epoch's data, in
        the delayed ``(kernel, data)`` form of :class:`mne.SourceEstimate`
        (see :func:`apply_brainforge_inverse_raw`; the kernel is shared).

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
    )
    stcs = _epochs_gen(setup, epochs)
    return stcs if return_generator else list(stcs)


def _iter_epochs(epochs, picks):
    """Each good epoch's data of channels ``picks``, without changing ``epochs``."""
    if epochs.preload:
        for k in range(len(epochs)):
            yield epochs.get_data(picks=picks, item=[k], copy=False)[0]
    else:
        for data in epochs.copy():  # iterating sets state: iterate a copy
            yield data[picks]


def _epochs_gen(setup, epochs):
    tmin = epochs.times[0]
    for k, data in enumerate(_iter_epochs(epochs, setup.picks)):
        logger.info(f"Processing epoch : {k + 1}")
        regions = _estimate_regions(
            setup, lambda a, b, d=data: d[:, a:b], data.shape[1]
        )
        yield setup.make_stc(regions, tmin, lazy=True)
