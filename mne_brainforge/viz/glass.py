"""Glass-brain projections of mixed (cortex + deep) source spaces and estimates."""

import matplotlib.pyplot as plt
import numpy as np

from ..head import DEEP_STRUCTURES

# (name, horizontal axis, vertical axis) of the three projections (x, y, z: RAS)
_VIEWS = (("sagittal", 1, 2), ("coronal", 0, 2), ("axial", 0, 1))
_STRUCTURE_COLOURS = dict(
    zip(
        DEEP_STRUCTURES,
        ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple"),
    )
)


def _positions(src):
    return np.concatenate([s["rr"][s["vertno"]] for s in src])


def plot_glass_brain(
    src, stc=None, *, truth=None, title=None, axes=None, min_fraction=0.5
):
    """Three projections of a mixed source space, or of an estimate on it.

    Without ``stc``, the deep structures' sources in their colours over the
    cortex's outline: where each structure is on the template. With ``stc``,
    a glass brain: every source whose time-RMS reaches ``min_fraction`` of the
    maximum, coloured and sized by it (strongest on top), cortex as dots and
    deep sources as squares. Plain matplotlib: works without a display.

    Parameters
    ----------
    src : mne.SourceSpaces
        A mixed source space (e.g. ``make_fsaverage_forward(info,
        deep=True)["src"]``) or a cortical one.
    stc : mne.MixedSourceEstimate | mne.SourceEstimate | None
        An estimate on ``src`` (rows in its order).
    truth : array-like, shape (n, 3) | None
        True source positions (m) to mark with a cross.
    title : str | None
        Title of the row.
    axes : sequence of 3 matplotlib Axes | None
        Where to draw (None: a new figure).
    min_fraction : float
        Sources below this fraction of the maximum are not drawn (the default
        0.5 is the deep benchmark's detection threshold).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> fwd = bf.make_fsaverage_forward(info, deep=True)
    >>> fig = bf.viz.plot_glass_brain(fwd["src"])  # where the structures are
    >>> fig = bf.viz.plot_glass_brain(fwd["src"], stc, truth=[[-0.013, -0.019, 0.006]])
    """
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), layout="constrained")
    fig = axes[0].figure
    cortex = 1e3 * _positions(src[:2])
    n_cortex = len(cortex)
    pos = 1e3 * _positions(src)
    if stc is not None:
        if len(stc.data) != len(pos):
            raise ValueError(
                f"stc has {len(stc.data)} sources, src {len(pos)}: plot an estimate "
                "on the source space it was computed on."
            )
        amplitude = np.sqrt(np.mean(np.abs(stc.data) ** 2, axis=1))
        top = amplitude.max() if amplitude.max() > 0 else 1.0  # an empty estimate
        order = np.argsort(amplitude)
        shown = order[amplitude[order] >= min_fraction * top]
        shown = shown[amplitude[shown] > 0]
    for ax, (name, h, v) in zip(axes, _VIEWS):
        ax.scatter(cortex[::4, h], cortex[::4, v], s=0.3, c="0.85", rasterized=True)
        if stc is None:
            for structure, s in zip(DEEP_STRUCTURES, src[2:]):
                rr = 1e3 * s["rr"][s["vertno"]]
                ax.scatter(
                    rr[:, h],
                    rr[:, v],
                    s=6,
                    c=_STRUCTURE_COLOURS[structure],
                    label=structure,
                )
        else:
            for kind, marker, size in (("cortex", "o", 30), ("deep", "s", 60)):
                rows = shown[(shown >= n_cortex) == (kind == "deep")]
                relative = amplitude[rows] / top
                mappable = ax.scatter(
                    pos[rows, h],
                    pos[rows, v],
                    c=amplitude[rows],
                    cmap="hot_r",
                    vmin=0,
                    vmax=top,
                    s=size * relative,
                    marker=marker,
                    edgecolors="none",
                )
        if truth is not None:
            marks = 1e3 * np.atleast_2d(truth)
            ax.scatter(marks[:, h], marks[:, v], marker="x", s=60, c="tab:cyan")
        ax.set(title=name, aspect="equal", xticks=[], yticks=[])
        for spine in ax.spines.values():
            spine.set_visible(False)
    if stc is None and len(src) > 2:
        axes[-1].legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    elif stc is not None:
        fig.colorbar(mappable, ax=list(axes), shrink=0.7, label="RMS")
    if title:
        axes[0].set_ylabel(title)
    return fig
