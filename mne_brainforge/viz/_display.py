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
_OPENGL = None  # the renderer Qt got an OpenGL context from, once checked

# Run in a child process: where Qt gets no OpenGL context, pyvistaqt's widget
# dereferences the missing context and the whole process dies (segfault).
_OPENGL_PROBE = """
import sys
from qtpy.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext
app = QGuiApplication(sys.argv[:1])
context, surface = QOpenGLContext(), QOffscreenSurface()
surface.create()
if not (context.create() and context.makeCurrent(surface)):
    sys.exit("Qt could not create an OpenGL context")
print(context.functions().glGetString(0x1F01))  # GL_RENDERER
"""
# Mesa's JIT-free software rasterizer, for sandboxes where llvmpipe cannot run
_OPENGL_FALLBACKS = ({}, {"GALLIUM_DRIVER": "softpipe"})


def ensure_3d_display():
    """Make MNE's 3D viewer (pyvistaqt) usable, starting a virtual X server if needed.

    On Linux without ``DISPLAY``, starts ``Xvfb`` (Debian/Ubuntu package
    ``xvfb``) for the lifetime of the process and points ``DISPLAY`` at it, so
    :meth:`mne.SourceEstimate.plot` and :class:`mne.viz.Brain` work on servers.

    Then checks, in a child process, that Qt gets an OpenGL context on the
    display (falling back to Mesa's ``softpipe`` rasterizer), because without one
    the 3D viewer crashes the process instead of raising.

    Raises
    ------
    RuntimeError
        If there is no display and Xvfb is not installed, or no OpenGL context.

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
    _check_opengl()
    mne.viz.set_3d_backend("pyvistaqt", verbose=False)


def _check_opengl():
    """Make sure Qt gets an OpenGL context, or raise with what to install."""
    global _OPENGL
    if _OPENGL is not None:
        return
    why = ""
    for extra in _OPENGL_FALLBACKS:
        try:
            probe = subprocess.run(
                [sys.executable, "-c", _OPENGL_PROBE],
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            why = "the OpenGL check hung for 120 s"
            continue
        if probe.returncode == 0:
            os.environ.update(extra)
            _OPENGL = probe.stdout.strip()
            logger.info(f"3D rendering with OpenGL renderer {_OPENGL}")
            return
        why = (
            " ".join(probe.stderr.strip().splitlines()[-2:])
            or f"exit {probe.returncode}"
        )
    raise RuntimeError(
        f"No OpenGL context for 3D rendering on display "
        f"{os.environ.get('DISPLAY')} ({why}). Install Mesa's drivers (e.g. "
        "apt-get install libgl1-mesa-dri libegl-mesa0) or use a machine with a "
        "working OpenGL display."
    )


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
