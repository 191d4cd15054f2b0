"""The end-to-end job that ``brainforge demo`` runs."""

from pathlib import Path

import mne
from mne.utils import logger, verbose

from .head import fetch_fsaverage, fsaverage_trans_path, make_fsaverage_forward
from .viz import ensure_3d_display, save_screenshot


@verbose
def run_demo(out_dir, *, montage="biosemi64", verbose=None):
    """Build the template head, a forward model and 3D figures of both.

    Parameters
    ----------
    out_dir : path-like
        Folder for the outputs (created).
    montage : str
        An MNE standard montage name (:func:`mne.channels.get_builtin_montages`).
    %(verbose)s

    Returns
    -------
    outputs : dict of Path
        ``forward`` (the ``-fwd.fif``), ``alignment`` and ``sensitivity`` (PNGs).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    subjects_dir = fetch_fsaverage()
    mon = mne.channels.make_standard_montage(montage)
    info = mne.create_info(mon.ch_names, 1000.0, "eeg")
    info.set_montage(mon)
    fwd = make_fsaverage_forward(info)
    outputs = {"forward": out_dir / f"fsaverage-{montage}-fwd.fif"}
    mne.write_forward_solution(outputs["forward"], fwd, overwrite=True)

    ensure_3d_display()
    outputs["alignment"] = out_dir / f"fsaverage-{montage}-alignment.png"
    fig = mne.viz.plot_alignment(
        info, trans=fsaverage_trans_path(), subject="fsaverage",
        subjects_dir=subjects_dir, eeg="projected", coord_frame="mri",
        surfaces=dict(head=0.25, outer_skull=0.35, inner_skull=0.5, pial=1.0),
    )  # fmt: skip
    mne.viz.set_3d_view(fig, azimuth=135, elevation=70, distance=0.55)
    save_screenshot(fig, outputs["alignment"])

    # How strongly each cortical source reaches this montage: the classic
    # first look at a forward model.
    outputs["sensitivity"] = out_dir / f"fsaverage-{montage}-sensitivity.png"
    smap = mne.sensitivity_map(fwd, ch_type="eeg", mode="fixed")
    brain = smap.plot(
        subject="fsaverage", subjects_dir=subjects_dir, hemi="split",
        views=["lat", "med"], size=(900, 700), background="white",
        time_viewer=False, clim=dict(kind="percent", lims=[5, 50, 95]),
    )  # fmt: skip
    save_screenshot(brain, outputs["sensitivity"])
    for key, path in outputs.items():
        logger.info(f"Wrote {key}: {path}")
    return outputs
