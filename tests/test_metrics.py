"""Metrics on hand-made cases with known answers."""

import mne
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from mne_brainforge import metrics
from mne_brainforge.datasets import read_fsaverage_source_space
from mne_brainforge.head.parcellation import source_graph


@pytest.fixture(scope="module")
def setup(subjects_dir):
    src = read_fsaverage_source_space()
    graph = source_graph(src)
    pos = np.concatenate([s["rr"] for s in src])
    return src, graph, pos


def _stc(data):
    vertices = [np.arange(10242), np.arange(10242)]
    return mne.SourceEstimate(
        data, vertices, tmin=0.0, tstep=0.004, subject="fsaverage"
    )


def _truth(pos, centres, radius=0.008, n_times=50):
    data = np.zeros((len(pos), n_times))
    wave = np.sin(np.linspace(0, 3 * np.pi, n_times)) * np.hanning(n_times)
    patches = []
    for k, c in enumerate(centres):
        hemi = slice(0, 10242) if c < 10242 else slice(10242, 20484)
        idx = np.arange(len(pos))[hemi]
        patch = idx[np.linalg.norm(pos[idx] - pos[c], axis=1) < radius]
        profile = np.exp(
            -(np.linalg.norm(pos[patch] - pos[c], axis=1) ** 2) / (2 * 0.004**2)
        )
        data[patch] += np.outer(profile, np.roll(wave, 7 * k))
        patches.append(patch)
    return metrics.GroundTruth(_stc(data * 1e-8), patches, centres)


def test_perfect_estimate(setup):
    src, graph, pos = setup
    truth = _truth(pos, [1000, 15000])
    labels = np.arange(len(pos)) // 40
    result = metrics.evaluate(truth.stc, truth, src, graph, labels)
    assert result["localization_error"] == 0.0
    assert result["spatial_dispersion"] == 0.0
    assert result["auc"] == 1.0
    assert result["nmse"] == 0.0
    assert result["temporal_correlation"] == pytest.approx(1.0)
    assert result["recall"] == 1.0 and result["precision"] == 1.0


def test_single_peak_exact(setup):
    src, graph, pos = setup
    truth = _truth(pos, [1000])
    # the estimate's only maximum at a vertex a known distance away
    target = 1500
    expected = np.linalg.norm(pos[target] - pos[1000]) * 1e3
    data = np.zeros_like(truth.stc.data)
    data[target] = truth.stc.data[1000]
    est = _stc(data)
    assert metrics.localization_error(est, truth, src, graph) == pytest.approx(expected)
    # all its energy at one point: the dispersion is its distance to the patch
    patch_dist = np.linalg.norm(pos[truth.patches[0]] - pos[target], axis=1).min() * 1e3
    assert metrics.spatial_dispersion(est, truth, src) == pytest.approx(patch_dist)
    # the centre vertex of the truth itself gives LE 0
    data = np.zeros_like(data)
    data[1000] = 1.0
    assert metrics.localization_error(_stc(data), truth, src, graph) == 0.0


def test_uniform_estimate_is_chance(setup):
    src, graph, pos = setup
    truth = _truth(pos, [3000])
    uniform = _stc(np.ones_like(truth.stc.data))
    assert metrics.auc(uniform, truth, src) == pytest.approx(0.5)
    assert metrics.temporal_correlation(uniform, truth) == 0.0
    # the inverse ranking gives 0
    inverse = _stc(1.0 - np.abs(truth.stc.data) / np.abs(truth.stc.data).max())
    assert metrics.auc(inverse, truth, src) == pytest.approx(0.0, abs=0.01)


def test_two_sources_hungarian_matching(setup):
    src, graph, pos = setup
    truth = _truth(pos, [1000, 15000])
    # estimated maxima 1500 (near 1000) and 15500 (near 15000): matched crosswise-free
    data = np.zeros_like(truth.stc.data)
    data[1500], data[15500] = 1.0, 0.8
    d1 = np.linalg.norm(pos[1500] - pos[1000]) * 1e3
    d2 = np.linalg.norm(pos[15500] - pos[15000]) * 1e3
    le = metrics.localization_error(_stc(data), truth, src, graph)
    assert le == pytest.approx((d1 + d2) / 2)
    # one maximum only: the other source counts its distance to it
    data[15500] = 0.0
    far = np.linalg.norm(pos[1500] - pos[15000]) * 1e3
    le = metrics.localization_error(_stc(data), truth, src, graph)
    assert le == pytest.approx((d1 + far) / 2)


def test_plateau_counts_once_at_its_centre(setup):
    """A map constant over regions (as BrainForge's) has one maximum per region."""
    src, graph, pos = setup
    truth = _truth(pos, [1000, 15000])
    hops = dijkstra(graph, unweighted=True, indices=[1000, 15000], limit=4)
    data = np.zeros_like(truth.stc.data)
    data[hops[0] <= 3], data[hops[1] <= 3] = 1.0, 0.5  # two contiguous plateaus
    assert np.ptp(pos[hops[0] <= 3], axis=0).max() > 0.012  # wider than min_distance
    maxima = metrics.local_maxima(metrics.energy_map(_stc(data)), graph, pos=pos)
    assert len(maxima) == 2
    le = metrics.localization_error(_stc(data), truth, src, graph)
    assert le < 3  # mm: each plateau's centre, not two points of the larger plateau
    # a lower plateau next to a higher one (a region beside the strongest) is no
    # maximum, although its inner sources equal all their neighbours
    around = dijkstra(graph, unweighted=True, indices=1000, limit=9)
    ring = (around > 3) & (around <= 8)  # wide enough to have inner sources
    data[ring] = 0.8
    maxima = metrics.local_maxima(metrics.energy_map(_stc(data)), graph, pos=pos)
    assert len(maxima) == 2 and not ring[maxima].any()


def test_otsu_and_precision_recall(setup):
    values = np.r_[np.zeros(100), np.ones(10)]
    assert 0 < metrics.otsu_threshold(values) < 1
    src, graph, pos = setup
    truth = _truth(pos, [1000])
    labels = np.zeros(len(pos), int)
    labels[truth.patches[0]] = 1
    labels[5000:5100] = 2
    precision, recall = metrics.region_precision_recall(truth.stc, truth, labels)
    assert (precision, recall) == (1.0, 1.0)
    data = truth.stc.data.copy()
    data[5000:5100] = data[1000]  # a false positive region as strong as the truth
    precision, recall = metrics.region_precision_recall(_stc(data), truth, labels)
    assert (precision, recall) == (0.5, 1.0)


def test_mismatched_vertices(setup):
    src, graph, pos = setup
    truth = _truth(pos, [1000])
    other = mne.SourceEstimate(np.ones((20, 5)), [np.arange(10), np.arange(10)], 0, 1)
    with pytest.raises(ValueError, match="different vertices"):
        metrics.auc(other, truth, src)
