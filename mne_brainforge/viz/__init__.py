"""3D rendering helpers on top of MNE's pyvista viewer, usable headless."""

import atexit
import os
import shutil
import subprocess
import sys

import mne
import numpy as np
from mne.utils import logger

_XVFB = None  # the Xvfb process we started, if any


def ensure_3d_display():
    """Make MNE's 3D viewer (pyvistaqt) usable, starting a virtual X server if needed.

    On Linux without ``DISPLAY``, starts ``Xvfb`` (Debian/Ubuntu package
    ``xvfb``) for the lifetime of the process and points ``DISPLAY`` at it, so
    :meth:`mne.SourceEstimate.plot` and :class:`mne.viz.Brain` work on servers.

    Raises
    ------
    RuntimeError
        If there is no display and Xvfb is not installed.

    See Also
    --------
    save_screenshot

    Examples
    --------
    On a server without a display:

    >>> from mne_brainforge.viz import ensure_3d_display
    >>> ensure_3d_display()
    >>> brain = stc.plot(subject="fsaverage", subjects_dir=subjects_dir)
    """
    global _XVFB
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise RuntimeError(
                "No display for 3D rendering and no Xvfb. Install it (e.g. apt-get "
                "install xvfb libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1) or "
                "run under xvfb-run -a."
            )
        read_fd, write_fd = os.pipe()
        _XVFB = subprocess.Popen(
            [
                xvfb,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                "1920x1080x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as fid:
            display = fid.readline().strip()
        if not display:
            raise RuntimeError("Xvfb failed to start; run under xvfb-run -a instead.")
        os.environ["DISPLAY"] = f":{display}"
        atexit.register(_XVFB.terminate)
        logger.info(f"Started Xvfb on display :{display} for 3D rendering")
    mne.viz.set_3d_backend("pyvistaqt", verbose=False)


def save_screenshot(figure, fname):
    """Save a screenshot of an MNE 3D figure or :class:`~mne.viz.Brain` as PNG.

    Parameters
    ----------
    figure : mne.viz.Brain | Figure3D
        What :meth:`mne.SourceEstimate.plot` or :func:`mne.viz.plot_alignment`
        returned. It is closed afterwards.
    fname : path-like
        Output PNG file.

    Returns
    -------
    image : ndarray, shape (height, width, 3)
        The rendered image (uint8).

    See Also
    --------
    ensure_3d_display

    Examples
    --------
    >>> from mne_brainforge.viz import ensure_3d_display, save_screenshot
    >>> ensure_3d_display()
    >>> brain = stc.plot(subject="fsaverage", subjects_dir=subjects_dir, hemi="lh")
    >>> image = save_screenshot(brain, "estimate.png")  # closes the Brain
    """
    import matplotlib.pyplot as plt

    if isinstance(figure, mne.viz.Brain):
        image = figure.screenshot()
        figure.close()
    else:
        image = figure.plotter.screenshot()
        mne.viz.close_3d_figure(figure)
    plt.imsave(fname, np.ascontiguousarray(image))
    return image


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

    ensure_3d_display()
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
    brain = stc.plot(
        subject="fsaverage",
        subjects_dir=subjects_dir,
        hemi=hemi,
        views="lat",
        size=(500, 400),
        background="white",
        time_viewer=False,
        colorbar=False,
        clim=dict(kind="value", lims=[1e-12, weights.max() / 2, weights.max()]),
        verbose=False,
    )
    ax = fig.add_subplot(grid[0, 2:])
    ax.imshow(brain.screenshot())
    brain.close()
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
