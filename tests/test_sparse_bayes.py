"""The sparse Bayesian (Champagne) inverse on simulated EEG through another head."""

import mne
import numpy as np
import pytest
from mne.io.constants import FIFF
from numpy.testing import assert_allclose

from mne_brainforge.head import (
    cortex_normal,
    fixed_orientation_gain,
    geodesic_neighbourhoods,
    jitter_electrodes,
    make_fsaverage_forward,
)
from mne_brainforge.inverse.sparse_bayes import (
    PATCH_WIDTHS,
    SparseBayes,
    _source_variance,
    apply_sparse_bayes,
    prepare_sparse_bayes,
    sparse_bayes_solve,
)

N_TIMES = 100
LH_SOURCES = (1000, 5000)  # left hemisphere (first 10242 sources)
RH_SOURCE = 18000


@pytest.fixture(scope="module")
def true_gain(info64):
    """Gain of another head: electrodes moved by 3 mm (per axis)."""
    info = jitter_electrodes(info64, 0.003, np.random.default_rng(0))
    fwd = make_fsaverage_forward(info, verbose="error")
    return fixed_orientation_gain(cortex_normal(fwd))[0]


@pytest.fixture(scope="module")
def positions(fwd64):
    return np.concatenate([s["rr"][s["vertno"]] for s in fwd64["src"]])


def _evoked(info, gain, sources, snr_db=20.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(N_TIMES) / info["sfreq"]
    moments = np.zeros((gain.shape[1], N_TIMES))
    for k, s in enumerate(sources):
        moments[s] = 10e-9 * np.sin(2 * np.pi * (5 + 3 * k) * t) * np.hanning(N_TIMES)
    signal = gain @ moments
    signal -= signal.mean(axis=0)
    noise = rng.standard_normal(signal.shape)
    noise -= noise.mean(axis=0)
    noise *= np.sqrt(np.sum(signal**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    evoked = mne.EvokedArray(signal + noise, info.copy(), tmin=0.0, verbose=False)
    return evoked.set_eeg_reference(projection=True, verbose=False)


def _energy(stc):
    return np.sqrt(np.mean(stc.data**2, axis=1))


@pytest.mark.parametrize("widths", [(0,), PATCH_WIDTHS])
@pytest.mark.parametrize("source", LH_SOURCES + (RH_SOURCE,))
def test_single_dipole_within_5mm(info64, fwd64, true_gain, positions, source, widths):
    evoked = _evoked(info64, true_gain, [source])
    stc = apply_sparse_bayes(evoked, fwd64, patch_widths=widths, verbose=False)
    assert stc.subject == "fsaverage"
    assert stc.data.shape == (20484, N_TIMES)
    peak = np.argmax(_energy(stc))
    # patches: a focal source comes back as a 5 mm patch near it (measured
    # 0-7.6 mm off at 20 dB; the 5 mm of the issue holds for single dipoles)
    tolerance = 0.005 if widths == (0,) else 0.008
    assert np.linalg.norm(positions[peak] - positions[source]) < tolerance
    # Amplitude near the truth (A·m): sparse Bayes is not shrunk like minimum norm
    if widths == (0,):  # a patch spreads the moment over its sources
        assert 0.3 < np.abs(stc.data).max() / 10e-9 < 3
    # focal: most of the energy within 15 mm (patch atoms spread it over more sources)
    energy = _energy(stc) ** 2
    near = np.linalg.norm(positions - positions[source], axis=1) < 0.015
    assert energy[near].sum() > 0.8 * energy.sum()
    if widths == (0,):
        assert np.count_nonzero(energy) < 500  # sparse


def test_two_sources_3cm_apart(info64, fwd64, true_gain, positions):
    a = LH_SOURCES[1]
    dist = np.linalg.norm(positions - positions[a], axis=1)
    b = int(np.argmin(np.abs(dist - 0.03) + 1.0 * (np.arange(len(dist)) >= 10242)))
    assert abs(dist[b] - 0.03) < 0.002
    evoked = _evoked(info64, true_gain, [a, b])
    energy = _energy(apply_sparse_bayes(evoked, fwd64, verbose=False))
    for s in (a, b):  # a strong estimate (>= 20 % of the peak) within 10 mm of each
        near = np.linalg.norm(positions - positions[s], axis=1) < 0.010
        assert energy[near].max() > 0.2 * energy.max()


@pytest.mark.parametrize("widths", [(0,), PATCH_WIDTHS])
def test_residual_and_uncertainty(info64, fwd64, true_gain, widths):
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0]])
    stc, residual, std = apply_sparse_bayes(
        evoked,
        fwd64,
        patch_widths=widths,
        return_residual=True,
        return_uncertainty=True,
        verbose=False,
    )
    gain = fixed_orientation_gain(cortex_normal(fwd64))[0]
    predicted = gain @ stc.data
    predicted -= predicted.mean(axis=0)  # the average reference
    assert residual.ch_names == evoked.ch_names
    assert_allclose(residual.data, evoked.data - predicted, atol=1e-20)
    # the same with the average reference applied already (a projector in use)
    applied = evoked.copy()
    if not applied.info["projs"]:
        applied.set_eeg_reference(projection=True, verbose=False)
    applied.apply_proj(verbose=False)
    _, residual_applied = apply_sparse_bayes(
        applied, fwd64, patch_widths=widths, return_residual=True, verbose=False
    )
    scale = np.abs(residual.data).max()
    assert_allclose(residual_applied.data, residual.data, atol=1e-6 * scale)
    # the fit explains most of the 20 dB data
    assert np.sum(residual.data**2) < 0.05 * np.sum(evoked.data**2)
    assert std.data.shape == (20484, 1)
    assert np.all(std.data >= 0) and std.data.max() > 0
    # pruned sources are certainly 0; the active ones are uncertain
    active = _energy(stc) > 0
    assert np.all(std.data[~active] == 0) and np.all(std.data[active] > 0)


def _patch_moments(fwd, centre, sigma):
    """A Gaussian patch (geodesic standard deviation ``sigma``, m) on ``centre``."""
    index, distance = geodesic_neighbourhoods(fwd["src"], 0.03, verbose=False)
    weights = np.zeros(20484)
    near = distance[centre] <= 2.5 * sigma
    weights[index[centre, near]] = np.exp(-0.5 * (distance[centre, near] / sigma) ** 2)
    return weights


def _patch_evoked(info, fwd, gain, sigma=0.008):
    """20 dB data of a Gaussian patch on ``LH_SOURCES[0]``, and its moments."""
    truth = _patch_moments(fwd, LH_SOURCES[0], sigma)
    t = np.arange(N_TIMES) / info["sfreq"]
    waveform = 1e-9 * np.sin(2 * np.pi * 5 * t) * np.hanning(N_TIMES)
    signal = gain @ np.outer(truth, waveform)
    signal -= signal.mean(axis=0)
    noise = np.random.default_rng(0).standard_normal(signal.shape)
    noise -= noise.mean(axis=0)
    noise *= 0.1 * np.sqrt(np.sum(signal**2) / np.sum(noise**2))  # 20 dB
    evoked = mne.EvokedArray(signal + noise, info.copy(), verbose=False)
    return evoked.set_eeg_reference(projection=True, verbose=False), truth


def test_patches_recover_extended_source(info64, fwd64, true_gain, positions):
    """An 8 mm patch: dipole-only Champagne scatters it, the patch dictionary does not."""
    evoked, truth = _patch_evoked(info64, fwd64, true_gain)
    dist = np.linalg.norm(positions - positions[LH_SOURCES[0]], axis=1)
    inside = truth > 0

    def scores(widths):
        energy = _energy(
            apply_sparse_bayes(evoked, fwd64, patch_widths=widths, verbose=False)
        )
        # spatial dispersion (mm) and the energy's overlap with the true support
        dispersion = 1e3 * np.sqrt(np.sum(energy**2 * dist**2) / np.sum(energy**2))
        overlap = energy[inside].sum() / energy.sum()
        return dispersion, overlap, np.count_nonzero(energy), dist[np.argmax(energy)]

    sd_dipoles, overlap_dipoles, _, _ = scores((0,))
    sd_patches, overlap_patches, n_patches, peak = scores(PATCH_WIDTHS)
    assert peak < 0.005
    assert sd_patches < 10 and sd_patches < sd_dipoles
    assert overlap_patches > 0.7 and overlap_patches > overlap_dipoles
    assert n_patches >= inside.sum() / 2  # an extended estimate, not a few dipoles


def _solve_logged(evoked, fwd, widths):
    """The estimate and its log-evidence (from the log)."""
    with mne.utils.catch_logging() as log:
        stc = apply_sparse_bayes(evoked, fwd, patch_widths=widths, verbose=True)
    text = log.getvalue()
    last = [line for line in text.splitlines() if "log-evidence" in line][-1]
    return stc, float(last.rsplit("log-evidence ", 1)[1]), text


def test_auto_dictionary_keeps_the_larger_evidence(info64, fwd64, true_gain):
    """``patch_widths='auto'``: dipoles and patches solved apart, the larger
    evidence kept; the extended source is given patches, the focal one dipoles."""
    patch, _ = _patch_evoked(info64, fwd64, true_gain)
    dipole = _evoked(info64, true_gain, [LH_SOURCES[0]])
    for evoked, winner in ((patch, "patches"), (dipole, "dipoles")):
        auto, ev_auto, log = _solve_logged(evoked, fwd64, "auto")
        assert f"flat {winner} start won" in log
        single = {
            "dipoles": _solve_logged(evoked, fwd64, (0,)),
            "patches": _solve_logged(evoked, fwd64, PATCH_WIDTHS),
        }
        assert max(single, key=lambda k: single[k][1]) == winner
        assert_allclose(ev_auto, single[winner][1], rtol=1e-6)
        scale = np.abs(single[winner][0].data).max()
        assert_allclose(auto.data, single[winner][0].data, atol=1e-6 * scale)


def test_source_variance_is_diag_of_posterior(info64, fwd64, true_gain):
    """The patch posterior's source variances equal diag(M Sigma_x M^T) formed in full."""
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0]], snr_db=10.0)
    prep = prepare_sparse_bayes(
        evoked.info, fwd64, patch_widths=PATCH_WIDTHS, verbose=False
    )
    data = prep.whitener @ evoked.data
    result = sparse_bayes_solve(prep.whitened_gain, data, n_iter=20)
    active = np.flatnonzero(result.gamma)
    lg, gamma = prep.whitened_gain[:, active], result.gamma[active]
    sigma_y = (lg * gamma) @ lg.T + result.noise * np.eye(prep.rank)
    sigma_x = np.diag(gamma) - (gamma[:, None] * lg.T) @ np.linalg.solve(
        sigma_y, lg * gamma
    )
    m = prep.scaled_basis(active).toarray()
    expected = np.einsum("ij,jk,ik->i", m, sigma_x, m)
    got = _source_variance(prep, prep.whitened_gain, result)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-12 * expected.max())
    assert prep.whitened_gain.shape == (63, 2 * 20484)


def test_wrong_prior_gives_flat_answer(info64, fwd64, true_gain):
    evoked = _evoked(info64, true_gain, [LH_SOURCES[1]])
    prior = np.zeros(20484)
    prior[10242:] = 1.0  # all mass on the wrong (right) hemisphere
    flat = apply_sparse_bayes(evoked, fwd64, verbose=False)
    with mne.utils.catch_logging() as log:
        stc = apply_sparse_bayes(evoked, fwd64, prior=prior, verbose=True)
    assert "the flat start won" in log.getvalue()
    assert_allclose(stc.data, flat.data)
    # forced to the prior, the answer differs
    forced = apply_sparse_bayes(
        evoked, fwd64, prior=prior, prior_mode="prior", verbose=False
    )
    assert not np.allclose(forced.data, flat.data, rtol=1e-3, atol=1e-3 * 10e-9)


def test_right_prior_wins(info64, fwd64, true_gain):
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0], RH_SOURCE], snr_db=10.0)
    prior = np.full(20484, 1e-3)
    prior[[LH_SOURCES[0], RH_SOURCE]] = 1.0
    with mne.utils.catch_logging() as log:
        apply_sparse_bayes(evoked, fwd64, prior=prior, verbose=True)
    assert "the prior start won" in log.getvalue()


def test_whitener_is_mne(info64, fwd64, true_gain):
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0]])
    cov = mne.make_ad_hoc_cov(evoked.info, verbose=False)
    prep = prepare_sparse_bayes(evoked.info, fwd64, cov, verbose=False)
    whitener, _ = mne.cov.compute_whitener(cov, evoked.info, pca=True, verbose=False)
    assert_allclose(prep.whitener, whitener)
    assert prep.rank == 63  # the average reference removes one dimension
    assert prep.whitened_gain.shape == (63, 20484)
    # the same whitened data (up to a rotation) as MNE's inverse operator
    inv = mne.minimum_norm.make_inverse_operator(
        evoked.info, fwd64, cov, loose=0.2, depth=0.8, verbose=False
    )
    inv = mne.minimum_norm.prepare_inverse_operator(inv, 1, 1 / 9, verbose=False)
    mne_white = inv["whitener"] @ inv["proj"] @ evoked.data
    ours = prep.whitener @ evoked.data
    assert_allclose(ours.T @ ours, mne_white.T @ mne_white, rtol=1e-6)
    # the projector is applied without a projector in the info too
    info = info64.copy()
    prep_noproj = prepare_sparse_bayes(info, fwd64, cov, verbose=False)
    assert_allclose(prep_noproj.whitener @ np.ones(64), 0, atol=1e-6)


def test_solver_on_synthetic_gain():
    rng = np.random.default_rng(1)
    gain = rng.standard_normal((32, 400))
    x = np.zeros((400, 50))
    x[[3, 200]] = rng.standard_normal((2, 50))
    data = gain @ x + 0.05 * rng.standard_normal((32, 50))
    result = sparse_bayes_solve(gain, data, n_iter=200)
    assert set(np.argsort(result.gamma)[-2:]) == {3, 200}
    assert_allclose(result.x[[3, 200]], x[[3, 200]], atol=0.05)
    assert 0.05**2 / 3 < result.noise < 0.05**2 * 3
    # more iterations never lower the evidence (monotone updates)
    evidences = [
        sparse_bayes_solve(gain, data, n_iter=n, tol=0).log_evidence
        for n in (1, 3, 10, 30)
    ]
    assert np.all(np.diff(evidences) > -1e-8)
    batch = sparse_bayes_solve(gain, np.stack([data, 2 * data]), n_iter=50)
    assert len(batch) == 2
    assert_allclose(batch[1].x, 2 * batch[0].x, rtol=1e-5, atol=1e-8)


def test_evidence_check_threads_are_the_plain_solves():
    """The starts solved side by side give the solves one by one, on one
    dictionary or on two solved apart, and the one-thread BLAS limit is lifted
    afterwards."""
    from threadpoolctl import threadpool_info

    from mne_brainforge.inverse.sparse_bayes import _solve_with_prior, _start

    rng = np.random.default_rng(2)
    gain = rng.standard_normal((24, 300))
    data = gain[:, [5, 150]] @ rng.standard_normal((2, 40))
    data += 0.1 * rng.standard_normal(data.shape)
    prior = np.full(300, 0.01)
    prior[[5, 150]] = 1.0
    every = {"": np.arange(300)}
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    for mode in ("evidence", "weight"):
        both = _solve_with_prior(gain, data, prior, mode, every, n_iter=30)
        flat = sparse_bayes_solve(gain, data, n_iter=30)
        start = _start(every[""], 300, prior)
        from_prior = sparse_bayes_solve(gain, data, gamma0=start, n_iter=30)
        if mode == "evidence":  # the larger evidence is kept, exactly
            kept = max(flat, from_prior, key=lambda r: r.log_evidence)
            assert_allclose(both.x, kept.x)
        else:
            assert len(both.parts) == 2
            assert_allclose(
                both.x, sum(w * r.x for w, r in both.parts), rtol=1e-12, atol=0
            )
            assert_allclose(both.parts[0][1].x, from_prior.x)
            assert_allclose(both.parts[1][1].x, flat.x)
    after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert after == blas
    # two dictionaries solved apart: each start is zero outside its own atoms,
    # and the evidence keeps the best of the four solves
    halves = {"a": np.arange(150), "b": np.arange(150, 300)}
    best = _solve_with_prior(gain, data, prior, "evidence", halves, n_iter=30)
    plain = []
    for atoms in halves.values():
        for gamma0 in (_start(atoms, 300, prior), _start(atoms, 300)):
            plain.append(sparse_bayes_solve(gain, data, gamma0=gamma0, n_iter=30))
            assert not plain[-1].gamma[np.setdiff1d(np.arange(300), atoms)].any()
    kept = max(plain, key=lambda r: r.log_evidence)
    assert_allclose(best.x, kept.x)
    assert best.log_evidence == max(r.log_evidence for r in plain)


def test_benchmark_method(info64, fwd64, true_gain, positions):
    method = SparseBayes(n_iter=30)
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0]])
    cov = mne.make_ad_hoc_cov(evoked.info, verbose=False)
    stc = method(evoked, fwd64, cov)
    assert method.prepare(evoked.info, fwd64, cov) is method.prepare(
        evoked.info, fwd64, cov
    )
    peak = np.argmax(_energy(stc))
    assert np.linalg.norm(positions[peak] - positions[LH_SOURCES[0]]) < 0.005


def test_bad_input(info64, fwd64, true_gain):
    evoked = _evoked(info64, true_gain, [LH_SOURCES[0]])
    with pytest.raises(ValueError, match="one value per source"):
        apply_sparse_bayes(evoked, fwd64, prior=np.ones(10), verbose=False)
    with pytest.raises(ValueError, match="non-negative"):
        apply_sparse_bayes(evoked, fwd64, prior=-np.ones(20484), verbose=False)
    with pytest.raises(ValueError, match="prior_mode"):
        apply_sparse_bayes(
            evoked, fwd64, prior=np.ones(20484), prior_mode="best", verbose=False
        )
    cov = mne.make_ad_hoc_cov(mne.pick_info(info64, np.arange(60)), verbose=False)
    with pytest.raises(ValueError, match="noise_cov lacks 4 .* same channels"):
        apply_sparse_bayes(evoked, fwd64, cov, verbose=False)
    meg = fwd64.copy()
    with meg["info"]._unlock():
        for ch in meg["info"]["chs"]:
            ch.update(
                kind=FIFF.FIFFV_MEG_CH,
                unit=FIFF.FIFF_UNIT_T,
                coil_type=FIFF.FIFFV_COIL_VV_MAG_T3,
            )
    with pytest.raises(ValueError, match="no EEG channels"):
        apply_sparse_bayes(evoked, meg, verbose=False)
    with pytest.raises(TypeError, match="mne.Evoked"):
        SparseBayes()(evoked.data, fwd64, None)
    with pytest.raises(ValueError, match="patch_widths must be distinct widths"):
        apply_sparse_bayes(evoked, fwd64, patch_widths=(0, 20), verbose=False)
    with pytest.raises(ValueError, match="patch_widths must be distinct widths"):
        SparseBayes(patch_widths=(5, 5))
