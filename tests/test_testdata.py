import ast
from pathlib import Path

import grimp
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

import mne_brainforge.evaluation.testdata as td
from mne_brainforge.head import (
    cortex_normal,
    fixed_orientation_gain,
    make_montage_info,
    source_graph,
)
from mne_brainforge.inverse.classical import MNEInverse
from mne_brainforge.metrics import localization_error


@pytest.fixture(scope="module")
def info32():
    return make_montage_info("biosemi32")


@pytest.fixture(scope="module")
def graph(fwd32):
    return source_graph(fwd32["src"], verbose=False)


@pytest.fixture(scope="module")
def gain(fwd32):
    return fixed_orientation_gain(cortex_normal(fwd32))[0]


def _pos(fwd):
    return np.concatenate([s["rr"][s["vertno"]] for s in fwd["src"]])


def test_independent_of_training_simulator():
    """No import path from the generator to the simulator, training or parcellation."""
    graph = grimp.build_graph("mne_brainforge")
    upstream = graph.find_upstream_modules("mne_brainforge.evaluation.testdata")
    banned = ("mne_brainforge.simulation", "mne_brainforge.training")
    assert not [m for m in upstream if m.startswith(banned)]
    assert "mne_brainforge.head" in upstream  # the graph does see its imports
    names = {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(ast.parse(Path(td.__file__).read_text()))
        if isinstance(node, (ast.Name, ast.Attribute))
    } | {
        alias.name
        for node in ast.walk(ast.parse(Path(td.__file__).read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert not names & {"Parcellation", "parcellate_source_space", "parcellation"}


def test_inverse_crime_sloreta_exact(info32, fwd32, graph):
    """Same forward, no noise, one dipole: sLORETA localises it exactly."""
    sloreta = MNEInverse("sLORETA", loose=0.0)
    for seed in range(3):
        case = td.make_test_case(
            info32, fwd32, shape="dipole", snr_db=None, graph=graph, seed=seed
        )
        stc = sloreta(case.evoked, fwd32, case.noise_cov)
        assert localization_error(stc, case.truth, fwd32["src"], graph) == 0.0


@pytest.mark.parametrize("noise", ["white", "pink", "brain", {"white": 1, "brain": 3}])
def test_snr_and_noise_cov(info32, fwd32, graph, gain, noise):
    case = td.make_test_case(
        info32,
        fwd32,
        n_sources=2,
        snr_db=3.0,
        noise=noise,
        channel_level_sd=0.5,
        graph=graph,
        seed=4,
    )
    signal = gain @ case.truth.stc.data
    signal -= signal.mean(axis=0)
    noise_part = case.evoked.data - signal
    assert np.allclose(noise_part.mean(axis=0), 0)  # average reference
    snr = 10 * np.log10(np.sum(signal**2) / np.sum(noise_part**2))
    assert snr == pytest.approx(3.0, abs=0.1)
    # the covariance comes from other noise of the same model and scale
    cov = case.noise_cov.data
    cov_ref = cov - cov.mean(0) - cov.mean(1)[:, None] + cov.mean()
    ratio = np.trace(cov_ref) / np.mean(np.sum(noise_part**2, axis=0))
    assert 0.6 < ratio < 1.6
    assert case.evoked.info["projs"] and case.evoked.nave == 1


def test_dipole_found_at_high_snr(info32, fwd32, graph):
    sloreta = MNEInverse("sLORETA", loose=0.0)
    errors = []
    for seed in range(3):
        case = td.make_test_case(
            info32, fwd32, shape="dipole", snr_db=20, graph=graph, seed=seed
        )
        stc = sloreta(case.evoked, fwd32, case.noise_cov)
        errors.append(localization_error(stc, case.truth, fwd32["src"], graph))
    assert np.median(errors) < 10.0


@pytest.mark.slow
def test_jittered_head_dipole(info32, fwd32, graph):
    """Data from a head with displaced electrodes: still near the truth at 20 dB."""
    fwd_true = td.make_truth_forward(info32, "jitter-4mm", seed=0, verbose="error")
    assert fwd_true["sol"]["data"].shape == fwd32["sol"]["data"].shape
    assert not np.allclose(fwd_true["sol"]["data"], fwd32["sol"]["data"])
    sloreta = MNEInverse("sLORETA", loose=0.0)
    errors = []
    for seed in range(3):
        case = td.make_test_case(
            info32,
            fwd_true,
            shape="dipole",
            snr_db=20,
            head="jitter-4mm",
            graph=graph,
            seed=seed,
        )
        assert case.head == "jitter-4mm"
        stc = sloreta(case.evoked, fwd32, case.noise_cov)
        errors.append(localization_error(stc, case.truth, fwd32["src"], graph))
    assert np.median(errors) < 20.0


@pytest.mark.parametrize("radius", [5.0, 15.0, 30.0])
def test_disc_extents(info32, fwd32, graph, radius):
    for profile in td.PROFILES:
        case = td.make_test_case(
            info32,
            fwd32,
            n_sources=2,
            extent_mm=radius,
            profile=profile,
            separation_mm=(2 * radius, np.inf),
            graph=graph,
            seed=1,
        )
        for patch, centre, extent in zip(
            case.truth.patches, case.truth.centres, case.extents_mm
        ):
            dist = dijkstra(graph, indices=centre)[patch] * 1e3
            assert dist.max() <= radius + 1e-6
            assert 0.8 * radius < extent < 1.05 * radius  # mesh paths zigzag
            peak = np.abs(case.truth.stc.data[patch]).max(axis=1)
            weights = peak / peak.max()
            if profile == "flat":
                assert np.allclose(weights, 1)
            else:
                assert weights.min() > np.exp(-2) - 1e-6 and weights.min() < 0.5


def test_elongated(info32, fwd32, graph):
    case = td.make_test_case(
        info32, fwd32, shape="elongated", extent_mm=10, aspect=4, graph=graph, seed=0
    )
    pos = _pos(fwd32)[case.truth.patches[0]]
    spread = np.linalg.svd(pos - pos.mean(0), compute_uv=False)
    assert spread[0] / spread[1] > 2.0  # four times longer than wide
    assert 7.0 < case.extents_mm[0] < 11.0  # about the disc's area


def test_separation_and_placement(info32, fwd32, graph):
    pos = _pos(fwd32)
    for seed in range(3):
        case = td.make_test_case(
            info32,
            fwd32,
            n_sources=3,
            separation_mm=(15, 30),
            shape="dipole",
            graph=graph,
            seed=seed,
        )
        centres = pos[case.truth.centres]
        dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1) * 1e3
        for k in range(1, 3):
            assert dist[k, :k].min() >= 15 and dist[k, :k].min() <= 30
        assert case.separation_mm == pytest.approx(dist[np.triu_indices(3, 1)].min())
    for placement in ("medial", "ventral"):
        mask = td.placement_mask(placement)
        case = td.make_test_case(
            info32, fwd32, n_sources=4, placement=placement, graph=graph, seed=5
        )
        assert mask[case.truth.centres].all()
        assert 1000 < mask.sum() < 0.3 * len(mask)
    with pytest.raises(RuntimeError, match="fewer sources"):
        td.make_test_case(
            info32, fwd32, n_sources=5, separation_mm=(300, 400), graph=graph, seed=0
        )


def test_same_seed_same_data(info32, fwd32, graph):
    kwargs = dict(n_sources=2, waveform="spike-wave", noise="brain", graph=graph)
    a = td.make_test_case(info32, fwd32, seed=7, **kwargs)
    b = td.make_test_case(info32, fwd32, seed=7, **kwargs)
    c = td.make_test_case(info32, fwd32, seed=8, **kwargs)
    assert np.array_equal(a.evoked.data, b.evoked.data)
    assert np.array_equal(a.noise_cov.data, b.noise_cov.data)
    assert np.array_equal(a.truth.centres, b.truth.centres)
    assert not np.allclose(a.evoked.data, c.evoked.data)


def _peak_freq(wave, sfreq):
    spectrum = np.abs(np.fft.rfft(wave - wave.mean(), n=4096)) ** 2
    return np.fft.rfftfreq(4096, 1 / sfreq)[np.argmax(spectrum)]


def test_waveform_spectra():
    sfreq = 250.0
    times = np.arange(-0.2, 1.8, 1 / sfreq)
    for family, band in [
        ("alpha", (7, 13)),
        ("beta", (14, 31)),
        ("spike-wave", (2, 4.5)),
    ]:
        waves = td.make_waveforms(family, 10, times, seed=0)
        assert np.allclose(np.abs(waves).max(axis=1), 1)
        peaks = [_peak_freq(w, sfreq) for w in waves]
        assert all(band[0] <= p <= band[1] for p in peaks), (family, peaks)
    # spike-wave: sharp negative spikes, the slow waves positive
    waves = td.make_waveforms("spike-wave", 5, times, seed=1)
    assert np.all(waves.min(axis=1) == -1) and np.all(waves.max(axis=1) > 0.2)
    # ERP: most power below 15 Hz, peak latencies within 0-0.6 s
    waves = td.make_waveforms("erp", 10, times, seed=2)
    assert all(0 <= times[np.argmax(np.abs(w))] <= 0.6 for w in waves)
    # 1/f: log-log spectral slope about -1
    waves = td.make_waveforms("1/f", 50, np.arange(4096) / sfreq, seed=3)
    freqs = np.fft.rfftfreq(4096, 1 / sfreq)
    power = np.mean(np.abs(np.fft.rfft(waves, axis=1)) ** 2, axis=0)
    band = (freqs > 1) & (freqs < 100)
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.15)


@pytest.mark.parametrize("correlation", [0.0, 0.5, 0.9])
def test_correlated_sources(correlation):
    times = np.arange(-0.2, 0.8, 1 / 250)
    waves = td.make_waveforms("erp", 3, times, correlation=correlation, seed=0)
    corr = np.corrcoef(waves)[np.triu_indices(3, 1)]
    assert np.allclose(corr, correlation, atol=1e-9)


def test_iter_test_cases(info32, fwd32, graph):
    grid = {"n_sources": [1, 2], "snr_db": [0.0, 10.0]}
    cases = list(
        td.iter_test_cases(
            info32, fwd32, grid, n_cases=2, seed=3, shape="dipole", graph=graph
        )
    )
    assert len(cases) == 8
    assert [p for p, _ in cases[::2]] == [
        {"n_sources": n, "snr_db": s} for n in (1, 2) for s in (0.0, 10.0)
    ]
    assert all(c.n_sources == p["n_sources"] for p, c in cases)
    again = list(
        td.iter_test_cases(
            info32, fwd32, grid, n_cases=2, seed=3, shape="dipole", graph=graph
        )
    )
    assert all(
        np.array_equal(a.evoked.data, b.evoked.data)
        for (_, a), (_, b) in zip(cases, again)
    )


def test_truth_heads():
    heads = td.TRUTH_HEADS
    skulls = sorted(
        h.conductivity[1] for h in heads.values() if h.conductivity[0] == 0.33
    )
    assert {0.0041, 0.0083, 0.0165} <= set(skulls)
    assert {h.skull_thickness for h in heads.values()} >= {5e-3, 7e-3, 9e-3}
    assert heads["coreg-5mm"].shift == 5e-3 and heads["jitter-8mm"].jitter == 8e-3


def test_sparse_baseline_on_test_case(info32, fwd32, graph):
    """MxNE (classical.py) gives a full, sparse estimate that finds a 20 dB dipole."""
    from mne_brainforge.inverse.classical import (
        CLASSICAL,
        SPARSE,
        MixedNorm,
        make_method,
    )

    assert isinstance(make_method("MxNE", alpha=40), MixedNorm)
    assert {type(make_method(n)).__name__ for n in CLASSICAL + SPARSE} == {
        "MNEInverse",
        "MixedNorm",
        "GammaMap",
    }
    with pytest.raises(ValueError, match="percentage"):
        MixedNorm(alpha=100)
    case = td.make_test_case(
        info32, fwd32, shape="dipole", snr_db=20, graph=graph, seed=1
    )
    stc = make_method("MxNE")(case.evoked, fwd32, case.noise_cov)
    assert stc.data.shape == case.truth.stc.data.shape
    assert all(
        np.array_equal(a, b) for a, b in zip(stc.vertices, case.truth.stc.vertices)
    )
    assert 1 <= np.count_nonzero(stc.data.any(axis=1)) <= 10
    assert localization_error(stc, case.truth, fwd32["src"], graph) < 15.0
