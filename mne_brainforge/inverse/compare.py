"""BrainForge next to MNE-Python's classical inverses, on the same data."""

import mne
import numpy as np
from mne.utils import logger, verbose

from ._checks import check_covariance_channels
from .apply import apply_brainforge_inverse
from .classical import MNEInverse

#: Method names accepted by :func:`compare_inverse_methods` (any case).
METHODS = ("brainforge", "MNE", "dSPM", "sLORETA", "eLORETA")


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
    methods=("brainforge", "sLORETA", "eLORETA", "dSPM"),
    *,
    model=None,
    lambda2=1.0 / 9.0,
    verbose=None,
):
    """Estimate the sources of an Evoked with BrainForge and classical inverses.

    Parameters
    ----------
    evoked : mne.Evoked
        EEG data with channel positions.
    forward : mne.Forward
        EEG forward model on the source space of the BrainForge model (e.g.
        :func:`mne_brainforge.make_fsaverage_forward`).
    noise_cov : mne.Covariance
        Noise covariance for the classical methods (e.g.
        :func:`mne.compute_covariance` on a baseline, or
        :func:`mne.make_ad_hoc_cov`); BrainForge does not use it.
    methods : sequence of str
        Any of ``'brainforge'``, ``'MNE'``, ``'dSPM'``, ``'sLORETA'``,
        ``'eLORETA'`` (case-insensitive).
    model : None | str | path-like | BrainForgeModel
        The BrainForge network, see :func:`apply_brainforge_inverse`.
    lambda2 : float
        Regularization of the classical methods (MNE's default 1/9: SNR 3).
    %(verbose)s

    Returns
    -------
    stcs : dict of str -> mne.SourceEstimate
        Signed cortex-normal estimates on the same vertices and times, in the
        order of ``methods``, keyed by the names above.

    See Also
    --------
    plot_inverse_comparison, apply_brainforge_inverse
    mne.minimum_norm.make_inverse_operator, mne.minimum_norm.apply_inverse

    Notes
    -----
    The classical estimates come from one inverse operator per method made
    from the same forward and covariance with MNE's defaults for surface
    source spaces (``loose=0.2, depth=0.8``), applied with
    ``pick_ori='normal'`` (signed, like BrainForge's): exactly the
    :class:`mne_brainforge.inverse.MNEInverse` methods of the
    benchmark. They get a copy of the data restricted to the forward's
    channels, with an average-reference projector added if there is none;
    MNE refuses data with another custom reference for them. Units differ:
    BrainForge, MNE and eLORETA give dipole moments (A·m), dSPM and sLORETA
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
    ['brainforge', 'sLORETA', 'eLORETA', 'dSPM']
    >>> fig = bf.plot_inverse_comparison(stcs, time=0.1)
    """

    if not isinstance(evoked, mne.Evoked):
        raise TypeError(f"evoked must be an mne.Evoked, got {type(evoked).__name__}.")
    if isinstance(methods, str):
        methods = (methods,)
    names = [_canonical(m) for m in methods]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"methods must name each method once, got {list(methods)}.")
    classical = [n for n in names if n != "brainforge"]
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
        else:
            method = MNEInverse(name, loose=0.2)
            method.lambda2 = float(lambda2)
            stcs[name] = method(prepared, forward, noise_cov)
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
    import matplotlib.pyplot as plt

    from ..viz import ensure_3d_display

    if not isinstance(stcs, dict) or not stcs:
        raise ValueError(
            "stcs must be a non-empty dict of method name -> SourceEstimate."
        )
    if hemi not in ("split", "lh", "rh", "both"):
        raise ValueError(f"hemi must be 'split', 'lh', 'rh' or 'both', got {hemi!r}.")
    if subjects_dir is None:
        from ..datasets import fetch_fsaverage

        subjects_dir = fetch_fsaverage()
    first = next(iter(stcs.values()))
    if time is None:
        power = np.mean([_normalized_power(stc) for stc in stcs.values()], axis=0)
        time = float(first.times[int(np.argmax(power))])
    ensure_3d_display()
    n_views = 1 if isinstance(views, str) else len(views)
    width = size[0] * (2 if hemi == "split" else 1)
    height = size[1] * n_views
    n_cols = min(len(stcs), 2 if hemi == "split" else 4)
    n_rows = -(-len(stcs) // n_cols)
    figsize = (width / 100 * n_cols, (height / 100 + 0.5) * n_rows)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, figsize=figsize)
    for ax in axes.flat[len(stcs) :]:
        ax.remove()
    for ax, (name, stc) in zip(axes.flat, stcs.items()):
        idx = int(np.argmin(np.abs(stc.times - time)))
        frame = stc.copy().crop(stc.times[idx], stc.times[idx], include_tmax=True)
        peak = float(np.abs(frame.data).max()) or 1.0
        brain = frame.plot(
            subject=stc.subject or "fsaverage",
            subjects_dir=subjects_dir,
            hemi=hemi,
            views=views,
            size=(width, height),
            background="white",
            time_viewer=False,
            colorbar=False,
            clim=dict(kind="value", pos_lims=[0.2 * peak, 0.5 * peak, peak]),
            verbose=False,
        )
        try:
            ax.imshow(brain.screenshot())
        finally:
            brain.close()
        ax.set_title(
            f"{name}\n(max {peak:.3g}, t = {stc.times[idx]:.3f} s)", fontsize=9
        )
        ax.axis("off")
    fig.tight_layout()
    if fname is not None:
        fig.savefig(fname, dpi=100)
    return fig


def _normalized_power(stc):
    power = np.sqrt(np.mean(stc.data**2, axis=0))
    return power / max(power.max(), 1e-300)
