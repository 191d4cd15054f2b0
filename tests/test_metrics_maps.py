import mne
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from mne_brainforge.head import read_fsaverage_source_space, source_graph
from mne_brainforge.metrics import (
    GroundTruth,
    average_precision,
    earth_movers_distance,
    localization_error,
    peak_localization_error,
)


@pytest.fixture(scope="module")
def src():
    return read_fsaverage_source_space(verbose=False)


@pytest.fixture(scope="module")
def graph(src):
    return source_graph(src, verbose=False)


@pytest.fixture(scope="module")
def pos(src):
    return np.concatenate([s["rr"][s["vertno"]] for s in src])


def _stc(src, values):
    values = np.asarray(values, float)
    return mne.SourceEstimate(
        np.repeat(values[:, None], 3, axis=1),
        [s["vertno"] for s in src],
        tmin=0.0,
        tstep=0.01,
    )


def _disc(graph, centre, radius):
    dist = dijkstra(graph, indices=centre, limit=radius)
    return np.flatnonzero(np.isfinite(dist))


def _truth(src, graph, centres, radius=0.008):
    values = np.zeros(graph.shape[0])
    patches = [_disc(graph, c, radius) for c in centres]
    for patch in patches:
        values[patch] = 1.0
    return GroundTruth(_stc(src, values), patches, centres)


def test_emd_exact_and_shifted(src, graph, pos):
    """0 for the exact map; about the shift for a displaced dipole or disc."""
    centre = 1000
    truth = _truth(src, graph, [centre])
    assert earth_movers_distance(truth.stc, truth, src) == pytest.approx(0, abs=1e-6)
    # a dipole estimate: the EMD is the mean distance of the disc to that source
    for other in (1200, 5000):
        values = np.zeros(len(pos))
        values[other] = 1.0
        patch = truth.patches[0]
        expected = np.linalg.norm(pos[patch] - pos[other], axis=1).mean() * 1e3
        emd = earth_movers_distance(_stc(src, values), truth, src)
        assert emd == pytest.approx(expected, abs=4.0)  # binning: within the cubes
    # the same disc moved: the EMD grows with the distance between the centres
    emds, shifts = [], []
    for other in (1001, 1200, 3000, 8000):
        moved = _truth(src, graph, [other]).stc
        emds.append(earth_movers_distance(moved, truth, src))
        shifts.append(np.linalg.norm(pos[other] - pos[centre]) * 1e3)
    order = np.argsort(shifts)
    assert np.all(np.diff(np.array(emds)[order]) > 0)
    assert emds[-1] == pytest.approx(shifts[-1], rel=0.15)


def test_average_precision(src, graph):
    truth = _truth(src, graph, [1000, 15000], radius=0.012)
    positive = np.zeros(graph.shape[0], bool)
    positive[np.concatenate(truth.patches)] = True
    assert average_precision(truth.stc, truth) == pytest.approx(1.0)
    # positives ranked last: AP of the worst ranking, close to the prevalence
    worst = average_precision(_stc(src, ~positive + 0.0), truth)
    assert worst < 2 * positive.mean()
    rng = np.random.default_rng(0)
    random = [
        average_precision(_stc(src, rng.random(len(positive))), truth) for _ in range(5)
    ]
    assert np.mean(random) == pytest.approx(positive.mean(), rel=0.3)
    # one negative above the tied positives: they enter together, precision n/(n+1)
    values = positive + 0.0
    values[np.flatnonzero(~positive)[0]] = 2.0
    n_pos = positive.sum()
    assert average_precision(_stc(src, values), truth) == pytest.approx(
        n_pos / (n_pos + 1)
    )
    # distinct scores: precision k/(k+1) at the k-th positive
    values[positive] = np.linspace(1.0, 0.5, n_pos)
    expected = np.mean(np.arange(1, n_pos + 1) / np.arange(2, n_pos + 2))
    assert average_precision(_stc(src, values), truth) == pytest.approx(expected)


def test_peak_error_plateau_map(src, graph, pos):
    """A flat-region map has one peak, at the region's centre: finite, small error."""
    centre = 4321
    truth = _truth(src, graph, [centre])
    flat = np.zeros(len(pos))
    flat[_disc(graph, centre, 0.015)] = 1.0  # a plateau wider than the patch
    error, n_peaks = peak_localization_error(
        _stc(src, flat), truth, src, graph, return_peaks=True
    )
    assert n_peaks == 1
    assert np.isfinite(error) and error < 4.0
    # a plateau 30 mm away: the error is about that distance
    far = np.flatnonzero(
        np.abs(np.linalg.norm(pos - pos[centre], axis=1) - 0.03) < 0.002
    )[0]
    flat = np.zeros(len(pos))
    flat[_disc(graph, far, 0.01)] = 1.0
    error = peak_localization_error(_stc(src, flat), truth, src, graph)
    assert error == pytest.approx(30.0, abs=5.0)


def test_peak_error_matches_smaller_peaks(src, graph, pos):
    """A spurious larger peak is not matched when a true-source peak exists."""
    centres = [2000, 17000]
    truth = _truth(src, graph, centres)
    values = np.zeros(len(pos))
    values[centres[0]], values[centres[1]], values[9000] = 0.6, 0.5, 1.0
    stc = _stc(src, values)
    error, n_peaks = peak_localization_error(stc, truth, src, graph, return_peaks=True)
    assert n_peaks == 3 and error == pytest.approx(0.0)
    # the top-n localization error pairs the spurious peak with a true source
    assert localization_error(stc, truth, src, graph) > 10
    assert np.isnan(peak_localization_error(_stc(src, 0 * values), truth, src, graph))


def test_emd_diffuse_map(src, graph, pos):
    """A map over all sources at a realistic scale (A·m): finite, scale-free."""
    truth = _truth(src, graph, [1000])
    rng = np.random.default_rng(0)
    values = rng.random(len(pos)) ** 8
    emd = earth_movers_distance(_stc(src, 1e-12 * values), truth, src)
    assert emd == pytest.approx(earth_movers_distance(_stc(src, values), truth, src))
    # mean distance of all sources to the patch centre bounds it from above
    spread = np.average(np.linalg.norm(pos - pos[1000], axis=1), weights=values) * 1e3
    assert 0.5 * spread < emd < spread + 5.0
