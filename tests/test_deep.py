"""Deep (subcortical) sources: the template's structures, mixed forwards, estimates."""

import mne
import numpy as np
import pytest

import mne_brainforge as bf
from mne_brainforge.head import (
    DEEP_STRUCTURES,
    deep_source_positions,
    read_fsaverage_source_space,
    source_gain,
)

# Typical centres (MNI, mm, |x| for the side) of the structures in the literature
_EXPECTED = {
    "thalamus": (11, -18, 7),
    "hippocampus": (25, -20, -15),
    "amygdala": (22, -4, -20),
    "caudate": (13, 10, 9),
    "putamen": (25, 1, 0),
}


def test_deep_structures_land_where_they_should():
    positions = deep_source_positions()
    assert list(positions) == list(DEEP_STRUCTURES)
    src = read_fsaverage_source_space()
    cortex = np.concatenate([s["rr"][s["vertno"]] for s in src])
    for name, rr in positions.items():
        assert len(rr) >= 20, name
        for side in (-1, 1):
            half = 1e3 * rr[np.sign(rr[:, 0]) == side]
            assert len(half) >= 10, (name, side)
            expected = np.array(_EXPECTED[name]) * [side, 1, 1]
            assert np.linalg.norm(half.mean(0) - expected) < 10, (name, side)
        # no deep source duplicates a cortical one
        distance = np.min(np.linalg.norm(rr[:, None] - cortex[None], axis=2), axis=1)
        assert distance.min() >= 3e-3


@pytest.fixture(scope="module")
def fwd_deep():
    montage = mne.channels.make_standard_montage("biosemi16")
    info = mne.create_info(montage.ch_names, 100.0, "eeg").set_montage(montage)
    return bf.make_fsaverage_forward(info, deep=True, verbose=False)


def test_mixed_forward_gain(fwd_deep):
    src = fwd_deep["src"]
    assert src.kind == "mixed"
    n_cortex = sum(s["nuse"] for s in src[:2])
    n_deep = sum(len(v) for v in deep_source_positions().values())
    assert fwd_deep["nsource"] == n_cortex + n_deep
    gain, names = source_gain(fwd_deep)
    assert gain.shape == (16, n_cortex + 3 * n_deep)
    # deep columns: the free-orientation x, y, z dipoles, whatever the frame
    np.testing.assert_allclose(
        gain[:, n_cortex:], fwd_deep["sol"]["data"][:, 3 * n_cortex :]
    )
    rotated = mne.convert_forward_solution(fwd_deep, surf_ori=True, verbose=False)
    np.testing.assert_allclose(source_gain(rotated)[0], gain, rtol=1e-6, atol=1e-12)
    fixed = mne.convert_forward_solution(
        bf.make_fsaverage_forward(fwd_deep["info"], verbose=False),
        surf_ori=True,
        force_fixed=True,
        verbose=False,
    )
    np.testing.assert_allclose(gain[:, :n_cortex], fixed["sol"]["data"], rtol=1e-5)


def test_sparse_bayes_on_mixed_forward(fwd_deep):
    gain, names = source_gain(fwd_deep)
    n_cortex = sum(s["nuse"] for s in fwd_deep["src"][:2])
    rng = np.random.default_rng(0)
    times = np.arange(50) / 100.0
    column = n_cortex + 3 * 10  # a thalamic x dipole
    data = gain[:, [column]] * 50e-9 * np.sin(2 * np.pi * 5 * times)
    data += 1e-7 * rng.standard_normal(data.shape)
    evoked = mne.EvokedArray(data, mne.create_info(names, 100.0, "eeg"))
    evoked.set_montage(mne.channels.make_standard_montage("biosemi16"))
    evoked.set_eeg_reference(projection=True, verbose=False)
    cov = mne.Covariance(np.eye(16) * 1e-14, names, [], evoked.info["projs"], 100)
    stc, residual, std = bf.apply_sparse_bayes(
        evoked, fwd_deep, cov, return_residual=True, return_uncertainty=True
    )
    assert isinstance(stc, mne.MixedSourceEstimate)
    assert isinstance(std, mne.MixedSourceEstimate)
    assert [len(v) for v in stc.vertices] == [s["nuse"] for s in fwd_deep["src"]]
    assert np.all(stc.data[n_cortex:] >= 0)  # deep rows are dipole norms
    assert residual.data.shape == data.shape


def test_fixed_mixed_forward_refused(fwd_deep):
    fixed = fwd_deep.copy()
    fixed["source_ori"] = mne.io.constants.FIFF.FIFFV_MNE_FIXED_ORI
    with pytest.raises(ValueError, match="deep sources have no cortex"):
        source_gain(fixed)
