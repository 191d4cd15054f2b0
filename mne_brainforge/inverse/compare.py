"""BrainForge next to MNE-Python's classical and sparse inverses, on the same data."""

import mne
from mne.utils import logger, verbose

from ..viz import plot_source_maps
from ._checks import check_covariance_channels
from .apply import apply_brainforge_inverse
from .classical import CLASSICAL, SPARSE, MNEInverse, make_method
from .sparse_bayes import apply_sparse_bayes

#: Method names accepted by :func:`compare_inverse_methods` (any case).
METHODS = ("brainforge", "sparse-bayes", *CLASSICAL, *SPARSE)


def _canonical(method):
    names = {m.lower(): m for m in METHODS}
    if not isinstance(method, str) or method.lower() not in names:
        raise ValueError(f"Unknown inverse method {method!r}; choose from {METHODS}.")
    return names[method.lower()]


def _classical_evoked(evoked, forward):
    """Copy of the evoked as MNE's inverse operators require it (average-reference projector)."""
    fwd_names = set(forward["info"]["ch_names"])
    picks = [n for n in evoked.ch_names if n in fwd_names]
    evoked = evoked.copy().pick(picks)
    avref = mne.io.constants.FIFF.FIFFV_PROJ_ITEM_EEG_AVREF
    has_avref = any(p["kind"] == avref for p in evoked.info["projs"])
    if not has_avref and not evoked.info["custom_ref_applied"]:
        logger.info("Adding an average-reference projector for the classical methods")
        evoked.set_eeg_reference(projection=True, verbose=False)
    return evoked.apply_proj(verbose=False)


@verbose
def compare_inverse_methods(
    evoked,
    forward,
    noise_cov,
    methods=("brainforge", "sparse-bayes", "sLORETA", "MxNE"),
    *,
    model=None,
    lambda2=1.0 / 9.0,
    verbose=None,
):
    """Estimate the sources of an Evoked with BrainForge, classical and sparse inverses.

    Parameters
    ----------
    evoked : mne.Evoked
        EEG data with channel positions.
    forward : mne.Forward
        EEG forward model on the source space of the BrainForge model (e.g.
        :func:`mne_brainforge.make_fsaverage_forward`).
    noise_cov : mne.Covariance | None
        Noise covariance of every method (e.g. :func:`mne.compute_covariance`
        on a baseline, or :func:`mne.make_ad_hoc_cov`); None only for
        ``'brainforge'`` and ``'sparse-bayes'`` (an ad-hoc one).
    methods : sequence of str
        Any of ``'brainforge'``, ``'sparse-bayes'`` (the flat-prior solve of
        BrainForge: :func:`~mne_brainforge.apply_sparse_bayes`), ``'MNE'``,
        ``'dSPM'``, ``'sLORETA'``, ``'eLORETA'``, ``'LCMV'``, ``'MxNE'``,
        ``'gamma-MAP'`` (case-insensitive).
    model : None | str | path-like | BrainForgeModel
        The BrainForge network, see :func:`apply_brainforge_inverse`.
    lambda2 : float
        Regularization of MNE, dSPM, sLORETA and eLORETA (MNE's default 1/9:
        SNR 3).
    %(verbose)s

    Returns
    -------
    stcs : dict of str -> mne.SourceEstimate | mne.MixedSourceEstimate
        Signed cortex-normal estimates on the same vertices and times, in the
        order of ``methods``, keyed by the names above; on a mixed forward
        (``make_fsaverage_forward(info, deep=True)``) unsigned
        :class:`mne.MixedSourceEstimate` amplitudes (free deep sources,
        ``loose=dict(surface=0.2, discrete=1)``; see
        :class:`~mne_brainforge.inverse.MNEInverse`).

    See Also
    --------
    plot_inverse_comparison, apply_brainforge_inverse
    mne.minimum_norm.make_inverse_operator, mne.minimum_norm.apply_inverse

    Notes
    -----
    The MNE-Python estimates are exactly the methods of the benchmark
    (:func:`mne_brainforge.inverse.make_method`): one inverse operator per
    method from the same forward and covariance with MNE's defaults for
    surface source spaces (``loose=0.2, depth=0.8``), applied with
    ``pick_ori='normal'`` (signed, like BrainForge's); MxNE and gamma-MAP on
    cortex-normal dipoles, over all sources (zero where inactive). They get a
    copy of the data restricted to the forward's channels, with an
    average-reference projector added if there is none; MNE refuses data with
    another custom reference for them. Units differ: BrainForge, the sparse
    methods, MNE and eLORETA give dipole moments (A·m), dSPM and sLORETA
    noise-normalized values.

    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> import mne
    >>> import mne_brainforge as bf
    >>> fwd = bf.make_fsaverage_forward(evoked.info)
    >>> noise_cov = mne.compute_covariance(epochs, tmax=0.0)
    >>> stcs = bf.compare_inverse_methods(evoked, fwd, noise_cov)
    >>> list(stcs)
    ['brainforge', 'sparse-bayes', 'sLORETA', 'MxNE']
    >>> fig = bf.plot_inverse_comparison(stcs, time=0.1)
    """

    if not isinstance(evoked, mne.Evoked):
        raise TypeError(f"evoked must be an mne.Evoked, got {type(evoked).__name__}.")
    if isinstance(methods, str):
        methods = (methods,)
    names = [_canonical(m) for m in methods]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"methods must name each method once, got {list(methods)}.")
    classical = [n for n in names if n not in ("brainforge", "sparse-bayes")]
    if classical and not isinstance(noise_cov, mne.Covariance):
        raise ValueError(
            f"{', '.join(classical)} need a noise covariance (mne.Covariance), got "
            f"{type(noise_cov).__name__}: use e.g. mne.compute_covariance(epochs, "
            "tmax=0) or mne.make_ad_hoc_cov(evoked.info)."
        )
    stcs = {}
    prepared = _classical_evoked(evoked, forward) if classical else None
    if classical:
        used = [n for n in prepared.ch_names if n not in prepared.info["bads"]]
        check_covariance_channels(noise_cov, used)
    for name in names:
        logger.info(f"Computing {name} ...")
        if name == "brainforge":
            stcs[name] = apply_brainforge_inverse(evoked, forward, model, noise_cov)
        elif name == "sparse-bayes":
            stcs[name] = apply_sparse_bayes(evoked, forward, noise_cov)
        elif name in CLASSICAL and name != "LCMV":
            method = MNEInverse(name, loose=0.2)
            method.lambda2 = float(lambda2)
            stcs[name] = method(prepared, forward, noise_cov)
        else:
            stcs[name] = make_method(name)(prepared, forward, noise_cov)
    return stcs


def plot_inverse_comparison(
    stcs,
    subjects_dir=None,
    *,
    time=None,
    hemi="split",
    views="lat",
    size=(400, 300),
    fname=None,
):
    """Render source estimates side by side on the cortex, one per method.

    Parameters
    ----------
    stcs : dict of str -> mne.SourceEstimate
        E.g. from :func:`compare_inverse_methods`; the keys are the titles.
    subjects_dir : path-like | None
        Where the estimates' subject is; None for the offline fsaverage
        template (:func:`mne_brainforge.datasets.fetch_fsaverage`).
    time : float | None
        Time (s) shown; None for the peak of the estimates' mean normalized
        power (each estimate's spatial RMS divided by its maximum).
    hemi : 'split' | 'lh' | 'rh' | 'both'
        Hemispheres, as in :meth:`mne.SourceEstimate.plot` (``'split'``: both,
        side by side).
    views : str | list of str
        Views, as in :meth:`mne.SourceEstimate.plot`.
    size : tuple of int
        Size (pixels) of one hemisphere view.
    fname : path-like | None
        Also save the figure here (PNG).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per estimate (in rows of two for ``hemi='split'``, else of
        four): the signed estimate at ``time`` with its own colour scale (the
        methods' units differ), titled with the method.

    See Also
    --------
    compare_inverse_methods, mne.SourceEstimate.plot

    Notes
    -----
    Renders with MNE's 3D viewer (pyvista) off screen; on a Linux server
    without a display a virtual X server (Xvfb) is started
    (:func:`mne_brainforge.viz.ensure_3d_display`).

    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> stcs = bf.compare_inverse_methods(evoked, fwd, noise_cov,
    ...                                   methods=("brainforge", "dSPM"))
    >>> fig = bf.plot_inverse_comparison(stcs, time=0.1, fname="comparison.png")
    """
    return plot_source_maps(
        stcs,
        subjects_dir,
        time=time,
        hemi=hemi,
        views=views,
        size=size,
        fname=fname,
    )
