"""Figure of one simulated training sample."""

import mne
import numpy as np

from .cortex import render_cortex


def plot_simulation(library, simulator, draw, info, subjects_dir, fname):
    """Figure of one simulated sample: waveforms, patches on the cortex, topographies.

    Parameters
    ----------
    library : WaveformLibrary
        Source of the waveforms (a few spikes and background segments shown).
    simulator : EEGSimulator
        What drew ``draw``.
    draw : dict
        Output of :meth:`~mne_brainforge.simulation.EEGSimulator.draw`.
    info : mne.Info
        Info of the simulator's channels (for the topographies).
    subjects_dir : path-like
        Where ``fsaverage`` is (for the cortex rendering).
    fname : path-like
        Output PNG.

    See Also
    --------
    mne_brainforge.simulation.EEGSimulator

    Notes
    -----
    How the simulation works: :doc:`/simulation`.

    Examples
    --------
    With ``simulator`` an :class:`~mne_brainforge.simulation.EEGSimulator` of
    ``library``, on a forward made from ``info`` (EEG channels only):

    >>> import numpy as np
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.viz import plot_simulation
    >>> draw = simulator.draw(np.random.default_rng(0))
    >>> plot_simulation(library, simulator, draw, info, bf.datasets.fetch_fsaverage(),
    ...                 "simulation.png")
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 8))
    grid = fig.add_gridspec(2, 4)
    ax = fig.add_subplot(grid[0, 0])
    times = (
        library.times
        if hasattr(library, "times")
        else np.arange(library.spikes.shape[1]) / library.sfreq
    )
    rng = np.random.default_rng(0)
    for k in rng.choice(len(library.spikes), 8, replace=False):
        ax.plot(times, library.spikes[k], lw=1)
    ax.set(
        title=f"TVB spikes ({len(library.spikes)} in library)",
        xlabel="time (s)",
        ylabel="mV",
    )
    ax = fig.add_subplot(grid[0, 1])
    bg = library.background[:3]
    for k, segment in enumerate(bg):
        ax.plot(np.arange(segment.size) / library.sfreq, segment + 3 * k, lw=0.8)
    ax.set(title="background segments", xlabel="time (s)", yticks=[])

    # the patches on the cortex: peak moment of each source
    weights = np.abs(draw["source_data"]).max(1)
    vertices = [np.asarray(v) for v in simulator.parcellation.vertices]
    stc = mne.SourceEstimate(weights[:, None], vertices, 0, 1, subject="fsaverage")
    centre = draw["patches"][0].centre_index
    hemi = "lh" if centre < len(vertices[0]) else "rh"
    clim = dict(kind="value", lims=[1e-12, weights.max() / 2, weights.max()])
    image = render_cortex(
        stc, subjects_dir, hemi=hemi, views="lat", size=(500, 400), clim=clim
    )
    ax = fig.add_subplot(grid[0, 2:])
    ax.imshow(image)
    ax.set_title(f"{len(draw['patches'])} source patch(es): peak moment per source")
    ax.axis("off")

    ax = fig.add_subplot(grid[1, :2])
    t = np.arange(draw["eeg"].shape[1]) / simulator.sfreq
    ax.plot(t, draw["eeg"][draw["mask"]].T * 1e6, lw=0.5, color="k", alpha=0.5)
    noise = draw["noise_kind"] or "none"
    ax.set(
        title=f"EEG: {draw['mask'].sum()} channels kept, SNR {draw['snr_db']:.1f} dB, "
        f"{noise} noise",
        xlabel="time (s)",
        ylabel="µV",
    )
    peak = int(np.argmax(np.abs(draw["signal"]).sum(0)))
    for col, (data, title) in enumerate(
        ((draw["signal"], "noise-free"), (draw["eeg"], "with noise"))
    ):
        ax = fig.add_subplot(grid[1, 2 + col])
        mask = draw["mask"]
        mne.viz.plot_topomap(
            data[mask, peak],
            mne.pick_info(info, np.flatnonzero(mask)),
            axes=ax,
            show=False,
            contours=4,
        )
        ax.set_title(f"{title}, t = {t[peak]:.2f} s")
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)
