"""EEG forward models on the template, checked against independent physics."""

import mne
import numpy as np
import pytest

from mne_brainforge import make_fsaverage_forward
from mne_brainforge.datasets import fsaverage_trans_path


def _fixed_gain(fwd):
    fixed = mne.convert_forward_solution(
        fwd, surf_ori=True, force_fixed=True, verbose="error"
    )
    gain = fixed["sol"]["data"]
    return gain - gain.mean(0)  # average reference


def test_forward_shape_and_source_space(fwd64):
    assert fwd64["sol"]["data"].shape == (64, 3 * 20484)
    assert [len(s["vertno"]) for s in fwd64["src"]] == [10242, 10242]
    assert fwd64["src"]._subject == "fsaverage"
    assert np.all(np.isfinite(fwd64["sol"]["data"]))


def test_bem_gain_agrees_with_three_shell_sphere(fwd64, info64):
    """The BEM gain correlates with an analytic 3-shell sphere model's."""
    sphere = mne.make_sphere_model("auto", "auto", info64, verbose="error")
    fwd_sphere = mne.make_forward_solution(
        info64,
        fsaverage_trans_path(),
        fwd64["src"],
        sphere,
        eeg=True,
        meg=False,
        verbose="error",
    )
    keep = np.concatenate(
        [
            np.isin(a["vertno"], b["vertno"])
            for a, b in zip(fwd64["src"], fwd_sphere["src"])
        ]
    )
    bem_gain, sphere_gain = _fixed_gain(fwd64)[:, keep], _fixed_gain(fwd_sphere)
    norms = np.linalg.norm(bem_gain, axis=0) * np.linalg.norm(sphere_gain, axis=0)
    valid = norms > 0  # the sphere model zeroes sources outside its inner shell
    assert valid.mean() > 0.9
    corr = np.sum(bem_gain * sphere_gain, 0)[valid] / norms[valid]
    assert np.median(corr) > 0.97
    assert np.percentile(corr, 5) > 0.9
    amplitude = (
        np.linalg.norm(bem_gain, axis=0)[valid]
        / np.linalg.norm(sphere_gain, axis=0)[valid]
    )
    ratio = np.median(amplitude)
    assert 0.5 < ratio < 2


def test_dipole_under_electrode_peaks_there(fwd64, info64):
    elec = np.array([ch["loc"][:3] for ch in info64["chs"]])
    rr = np.concatenate([s["rr"][s["vertno"]] for s in fwd64["src"]])  # head coords
    gain = fwd64["sol"]["data"].reshape(len(elec), -1, 3)
    hits = []
    for i, pos in enumerate(elec):
        src = np.argmin(np.linalg.norm(rr - pos, axis=1))
        toward = (pos - rr[src]) / np.linalg.norm(pos - rr[src])
        hits.append(np.argmax(gain[:, src] @ toward) == i)
    assert np.mean(hits) >= 0.95


@pytest.mark.slow
def test_skull_conductivity_changes_gain(fwd64, info64):
    fwd_conductive = make_fsaverage_forward(
        info64, conductivity=(0.3, 0.015, 0.3), verbose="error"
    )
    ratio = np.linalg.norm(_fixed_gain(fwd_conductive)) / np.linalg.norm(
        _fixed_gain(fwd64)
    )
    assert ratio > 1.3  # a more conductive skull smears less, larger potentials


def test_other_montages_and_non_eeg_channels(subjects_dir, montage_info):
    info = montage_info("fsaverage_1020")
    info = mne.create_info(
        info.ch_names + ["EOG", "STI"],
        250.0,
        ["eeg"] * len(info.ch_names) + ["eog", "stim"],
    )
    info.set_montage("fsaverage_1020", on_missing="ignore")
    before = info.copy()
    fwd = make_fsaverage_forward(info, verbose="error")
    assert (
        fwd["nchan"] == len(info.ch_names) - 2 and "EOG" not in fwd["info"]["ch_names"]
    )
    assert mne.utils.object_diff(info, before) == ""  # the user's Info is untouched


def test_bad_input_messages(info64):
    no_pos = mne.create_info(["Cz", "Pz"], 250.0, "eeg")
    with pytest.raises(ValueError, match=r"no position.*set_montage"):
        make_fsaverage_forward(no_pos)
    meg = mne.create_info(["MEG 0113"], 250.0, "mag")
    with pytest.raises(ValueError, match="no EEG channels"):
        make_fsaverage_forward(meg)
    mon = mne.channels.make_standard_montage("biosemi64")
    pos = {k: v * 1e3 for k, v in mon.get_positions()["ch_pos"].items()}
    in_mm = mne.create_info(list(pos), 250.0, "eeg")
    in_mm.set_montage(mne.channels.make_dig_montage(ch_pos=pos, coord_frame="head"))
    with pytest.raises(ValueError, match="millimetres"):
        make_fsaverage_forward(in_mm)
    shifted = info64.copy()
    with shifted._unlock():
        for ch in shifted["chs"]:
            ch["loc"][:3] += [
                0.0,
                0.0,
                0.06,
            ]  # a subject digitisation, not coregistered
    with pytest.raises(ValueError, match="not in fsaverage head coordinates"):
        make_fsaverage_forward(shifted)
    wrong_frame = info64.copy()
    with wrong_frame._unlock():
        for ch in wrong_frame["chs"]:
            ch["coord_frame"] = mne.io.constants.FIFF.FIFFV_COORD_MRI
    with pytest.raises(ValueError, match="head coordinates"):
        make_fsaverage_forward(wrong_frame)
    with pytest.raises(TypeError, match="mne.Info"):
        make_fsaverage_forward("biosemi64")
