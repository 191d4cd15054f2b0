"""A display for MNE's 3D viewer on headless machines, and screenshots."""

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
