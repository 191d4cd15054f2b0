"""The one cortex renderer: source maps side by side, in MNE's 3D viewer, to PNG."""

import mne
import numpy as np

from ..metrics import energy_map
from ..utils import check_option, check_type
from ._display import ensure_3d_display


def energy_estimate(stc):
    """One-sample estimate of each source's RMS over time (what the metrics score).

    Parameters
    ----------
    stc : mne.SourceEstimate
        Any estimate.

    Returns
    -------
    energy : mne.SourceEstimate
        A copy with one time point: the RMS over time of each source.

    Examples
    --------
    >>> from mne_brainforge.viz import energy_estimate
    >>> energy_estimate(stc).data.shape
    (20484, 1)
    """
    return mne.SourceEstimate(
        energy_map(stc)[:, np.newaxis],
        stc.vertices,
        tmin=0.0,
        tstep=stc.tstep,
        subject=stc.subject,
    )


def render_cortex(stc, subjects_dir, *, hemi, views, size, clim):
    """Screenshot (RGB array) of ``stc``'s first time point in MNE's 3D viewer."""
    ensure_3d_display()
    brain = stc.plot(
        subject=stc.subject or "fsaverage",
        subjects_dir=subjects_dir,
        hemi=hemi,
        views=views,
        size=size,
        background="white",
        time_viewer=False,
        colorbar=False,
        clim=clim,
        verbose=False,
    )
    try:
        return brain.screenshot()
    finally:
        brain.close()


def plot_source_maps(
    stcs,
    subjects_dir=None,
    *,
    time=None,
    hemi="split",
    views="lat",
    size=(400, 300),
    threshold=0.2,
    title=None,
    fname=None,
):
    """Render source estimates side by side on the cortex, one panel per estimate.

    Parameters
    ----------
    stcs : dict of str -> mne.SourceEstimate
        The estimates; the keys are the panel titles.
    subjects_dir : path-like | None
        Where the estimates' subject is; None for the offline fsaverage template
        (:func:`mne_brainforge.datasets.fetch_fsaverage`).
    time : float | 'energy' | None
        Time (s) shown; ``'energy'`` for each source's RMS over time; None for
        the peak of the estimates' mean normalized power (each estimate's
        spatial RMS divided by its maximum).
    hemi : 'split' | 'lh' | 'rh' | 'both'
        Hemispheres, as in :meth:`mne.SourceEstimate.plot`.
    views : str | list of str
        Views, as in :meth:`mne.SourceEstimate.plot`.
    size : tuple of int
        Size (pixels) of one hemisphere view.
    threshold : float
        Colour starts at this fraction of each map's own maximum (the methods'
        units differ, and percentiles of a focal, mostly zero, map are all zero).
    title : str | None
        Figure title.
    fname : path-like | None
        Also save the figure here (PNG).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per estimate (rows of two for ``hemi='split'``, else of four).

    See Also
    --------
    mne_brainforge.plot_inverse_comparison, mne.SourceEstimate.plot

    Notes
    -----
    Renders off screen; on a Linux server without a display a virtual X server
    (Xvfb) is started (:func:`ensure_3d_display`).

    Examples
    --------
    >>> from mne_brainforge.viz import plot_source_maps
    >>> fig = plot_source_maps({"truth": stc_true, "sLORETA": stc}, time="energy")
    """
    import matplotlib.pyplot as plt

    check_type(stcs, (dict,), "stcs")
    if not stcs:
        raise ValueError("stcs must be a non-empty dict of name -> SourceEstimate.")
    check_option("hemi", hemi, ("split", "lh", "rh", "both"))
    if subjects_dir is None:
        from ..datasets import fetch_fsaverage

        subjects_dir = fetch_fsaverage()
    if time is None:
        power = np.mean([_normalized_power(stc) for stc in stcs.values()], axis=0)
        time = float(next(iter(stcs.values())).times[int(np.argmax(power))])
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
        if time == "energy":
            frame, when = energy_estimate(stc), "RMS over time"
        else:
            idx = int(np.argmin(np.abs(stc.times - time)))
            frame = stc.copy().crop(stc.times[idx], stc.times[idx], include_tmax=True)
            when = f"t = {stc.times[idx]:.3f} s"
        peak = float(np.abs(frame.data).max()) or 1.0
        lims = [threshold * peak, (1 + threshold) / 2 * peak, peak]
        clim = dict(kind="value", pos_lims=lims)
        image = render_cortex(
            frame, subjects_dir, hemi=hemi, views=views, size=(width, height), clim=clim
        )
        ax.imshow(image)
        ax.set_title(f"{name}\n(max {peak:.3g}, {when})", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if fname is not None:
        fig.savefig(fname, dpi=100)
    return fig


def _normalized_power(stc):
    power = np.sqrt(np.mean(stc.data**2, axis=0))
    return power / max(power.max(), 1e-300)
