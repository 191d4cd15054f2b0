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


def test_truth_grid_lies_between_the_estimate_grid():
    default = np.concatenate(list(deep_source_positions().values()))
    shifted = deep_source_positions(offset=2.5e-3)
    for name, rr in shifted.items():
        assert len(rr) >= 20, name
        distance = np.min(np.linalg.norm(rr[:, None] - default[None], axis=2), axis=1)
        # half a grid step along each axis: sqrt(3) * 2.5 mm from the 8 around it
        assert distance.min() > 4.25e-3, name
        assert np.median(distance) == pytest.approx(np.sqrt(3) * 2.5e-3, abs=5e-5)
    with pytest.raises(ValueError, match="offset"):
        deep_source_positions(offset=6e-3)


def test_deep_forward_refuses_a_surface_source_space(fwd_deep):
    with pytest.raises(ValueError, match="mixed source space"):
        bf.make_fsaverage_forward(
            fwd_deep["info"], deep=read_fsaverage_source_space(), verbose=False
        )


@pytest.fixture(scope="module")
def fwd_deep_true(fwd_deep):
    from mne_brainforge.evaluation.testdata import make_truth_forward

    return make_truth_forward(fwd_deep["info"], "nominal", deep=True, verbose=False)


def _info16():
    montage = mne.channels.make_standard_montage("biosemi16")
    return mne.create_info(montage.ch_names, 100.0, "eeg").set_montage(montage)


def test_deep_test_case_and_scores(fwd_deep, fwd_deep_true):
    from mne_brainforge.evaluation.deep import make_deep_test_case, score_deep

    info = _info16()
    case = make_deep_test_case(
        info, fwd_deep_true, structure="hippocampus", side=1, snr_db=20, seed=0
    )
    src = fwd_deep["src"]
    n_cortex = sum(s["nuse"] for s in src[:2])
    deep = np.concatenate([s["rr"][s["vertno"]] for s in src[2:]])
    distance = np.linalg.norm(deep - case.deep_position, axis=1)
    nearest = int(distance.argmin())
    hippocampus = slice(src[2]["nuse"], src[2]["nuse"] + src[3]["nuse"])
    assert hippocampus.start <= nearest < hippocampus.stop
    assert case.deep_position[0] > 0 and len(case.cortex_positions) == 0
    assert 4e-3 < distance.min() < 5e-3  # off the estimates' grid
    assert case.evoked.data.shape == (16, 50)

    # an estimate on the nearest source is found; one on the thalamus is a false one
    data = np.zeros((fwd_deep["nsource"], 50))
    data[n_cortex + nearest] = 1.0
    stc = mne.MixedSourceEstimate(data, [s["vertno"] for s in src], 0, 0.01)
    scores = score_deep(stc, src, case)
    assert scores["detected"] and scores["peak_in_structure"]
    assert not scores["false_deep"]
    assert scores["deep_error_mm"] == pytest.approx(1e3 * distance.min())
    assert scores["deep_share"] == pytest.approx(1.0)
    data[n_cortex + 3] = 0.8  # a thalamic source at 80% of the maximum
    scores = score_deep(stc, src, case)
    assert scores["detected"] and scores["false_deep"]
    data[n_cortex + 3] = 1.5  # now the thalamus is the peak
    scores = score_deep(stc, src, case)
    assert scores["detected"] and not scores["peak_in_structure"]
    data[n_cortex + 3] = 0.8
    data[n_cortex + nearest] = 0.0
    data[:n_cortex:100] = 2.0  # now the cortex dominates: nothing deep is found
    scores = score_deep(stc, src, case)
    assert not scores["detected"] and not scores["false_deep"]

    cortex_only = make_deep_test_case(
        info, fwd_deep_true, condition="cortex", snr_db=10, seed=1
    )
    assert cortex_only.structure is None and len(cortex_only.cortex_positions) == 1
    data[n_cortex + 3] = 2.0  # any deep source at the maximum is a false detection
    scores = score_deep(stc, src, cortex_only)
    assert scores["false_deep"] and scores["detected"] is None
    with pytest.raises(ValueError, match="mixed forward"):
        make_deep_test_case(info, bf.make_fsaverage_forward(info, verbose=False))


def test_classical_methods_on_mixed_forward(fwd_deep, fwd_deep_true):
    from mne_brainforge.evaluation.deep import make_deep_test_case, score_deep
    from mne_brainforge.inverse.classical import GammaMap, MNEInverse

    case = make_deep_test_case(
        _info16(), fwd_deep_true, structure="thalamus", snr_db=20, seed=2
    )
    src = fwd_deep["src"]
    sizes = [s["nuse"] for s in src]
    lcmv = MNEInverse("LCMV")(case.evoked, fwd_deep, case.noise_cov)
    sloreta = MNEInverse("sLORETA")(case.evoked, fwd_deep, case.noise_cov)
    gamma = GammaMap(maxit=5)(case.evoked, fwd_deep, case.noise_cov)
    for stc in (lcmv, sloreta, gamma):
        assert isinstance(stc, mne.MixedSourceEstimate)
        assert [len(v) for v in stc.vertices] == sizes
    # the beamformer finds a lone thalamic source at 20 dB, even with 16 channels
    scores = score_deep(lcmv, src, case)
    assert scores["detected"] and scores["deep_error_mm"] < 10


def test_glass_brain(fwd_deep):
    import matplotlib.pyplot as plt

    src = fwd_deep["src"]
    fig = bf.viz.plot_glass_brain(src)
    assert len(fig.axes) == 3
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert labels == list(DEEP_STRUCTURES)
    data = np.zeros((fwd_deep["nsource"], 5))
    data[-1] = 1.0
    stc = mne.MixedSourceEstimate(data, [s["vertno"] for s in src], 0, 0.01)
    fig2 = bf.viz.plot_glass_brain(src, stc, truth=[[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="sources"):
        bf.viz.plot_glass_brain(src[:2] + src[2:3], stc)
    plt.close(fig)
    plt.close(fig2)
