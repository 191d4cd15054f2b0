"""What MNE users do with fsaverage estimates works on the offline template."""

import os
import shutil
import subprocess
import sys

import mne
import numpy as np
import pytest

from mne_brainforge.viz import save_screenshot


@pytest.fixture(scope="module")
def smap(fwd64):
    """A smooth, non-trivial estimate: the EEG sensitivity map."""
    return mne.sensitivity_map(fwd64, ch_type="eeg", mode="fixed", verbose="error")


def test_morph_to_ico4_keeps_values(smap, subjects_dir):
    morph = mne.compute_source_morph(
        smap,
        "fsaverage",
        "fsaverage",
        spacing=4,
        smooth="nearest",
        subjects_dir=subjects_dir,
        verbose="error",
    )
    stc4 = morph.apply(smap)
    assert [len(v) for v in stc4.vertices] == [2562, 2562]
    # ico4 vertices are ico5 vertices: morphing must return their values
    for hemi, vertices in enumerate(stc4.vertices):
        original = smap.data[
            np.searchsorted(smap.vertices[hemi], vertices) + hemi * 10242
        ]
        morphed = stc4.data[hemi * 2562 : (hemi + 1) * 2562]
        np.testing.assert_allclose(morphed, original, rtol=1e-6)
    # MNE's default smoothing morph stays close to them
    smoothed = mne.compute_source_morph(
        smap,
        "fsaverage",
        "fsaverage",
        spacing=4,
        subjects_dir=subjects_dir,
        verbose="error",
    ).apply(smap)
    assert np.corrcoef(smoothed.data[:, 0], stc4.data[:, 0])[0, 1] > 0.9


def test_label_time_course(smap, subjects_dir):
    labels = mne.random_parcellation(
        "fsaverage", 20, "both", subjects_dir=subjects_dir, random_state=0
    )
    src = mne.read_source_spaces(
        subjects_dir / "fsaverage" / "bem" / "fsaverage-ico5-src.fif", verbose=False
    )
    tc = mne.extract_label_time_course(smap, labels, src, mode="mean", verbose="error")
    assert tc.shape == (len(labels), 1)
    for label, value in zip(labels, tc[:, 0]):
        hemi = 0 if label.hemi == "lh" else 1
        rows = np.isin(smap.vertices[hemi], label.vertices)
        assert value == pytest.approx(
            smap.data[hemi * 10242 :][:10242][rows, 0].mean(), rel=1e-6
        )


@pytest.mark.render
def test_stc_plot_renders_to_png(smap, subjects_dir, tmp_path, needs_3d):
    brain = smap.plot(
        subject="fsaverage",
        subjects_dir=subjects_dir,
        hemi="lh",
        views="lat",
        size=(400, 300),
        background="white",
        time_viewer=False,
    )
    image = save_screenshot(brain, tmp_path / "brain.png")
    assert (tmp_path / "brain.png").stat().st_size > 10_000
    not_background = np.any(image < 250, axis=-1)  # background is white
    assert 0.1 < not_background.mean() < 0.9  # a brain, neither blank nor all paint
    colourful = (
        np.ptp(image.astype(int), axis=-1) > 60
    )  # the hot colormap, not just grey
    assert colourful.mean() > 0.05


def test_cli_help_and_head(subjects_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mne_brainforge.cli", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "head" in out.stdout and "demo" in out.stdout
    fwd_file = tmp_path / "x-fwd.fif"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mne_brainforge.cli",
            "head",
            "--montage",
            "biosemi32",
            "--forward",
            str(fwd_file),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert f"subjects_dir: {subjects_dir}" in out.stdout
    assert mne.read_forward_solution(fwd_file, verbose=False)["nchan"] == 32
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mne_brainforge.cli",
            "head",
            "--montage",
            "nope",
            "--forward",
            "x",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "neither an MNE standard montage" in out.stderr


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_no_opengl_is_an_error_not_a_crash(tmp_path):
    """Without an OpenGL driver the 3D viewer would kill the process (segfault)."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["LIBGL_DRIVERS_PATH"] = str(tmp_path)  # Mesa finds no driver here
    code = "from mne_brainforge.viz import ensure_3d_display; ensure_3d_display()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr[-500:]
    assert "RuntimeError: No OpenGL context for 3D rendering" in result.stderr
    assert "apt-get install libgl1-mesa-dri" in result.stderr
