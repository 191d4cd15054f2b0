import mne
import numpy as np
import pytest

from mne_brainforge.evaluation.real_data import (
    expected_region,
    load_spharapy_sep,
    score_sep,
)
from mne_brainforge.head import read_fsaverage_source_space


@pytest.fixture(scope="module")
def src(subjects_dir):
    return read_fsaverage_source_space(verbose="error")


def test_load_spharapy_sep():
    pytest.importorskip("spharapy")
    evoked, noise_cov, meta = load_spharapy_sep(verbose="error")
    assert len(evoked.ch_names) == 256 and evoked.info["sfreq"] == 2048.0
    assert 1e-7 < np.abs(evoked.data).max() < 1e-5  # volts (a few µV)
    assert meta["stimulated"] == "right" and meta["hemi_expected"] == "lh"
    lat = meta["latencies"]
    assert 0.012 < lat["P14"] < 0.016 and 0.018 < lat["N20"] < 0.023
    assert 0.027 < lat["P25"] < 0.032
    assert meta["fit"]["rms_mm"] < 4.5
    assert meta["fit"]["runner_up_rms_mm"] > meta["fit"]["rms_mm"]
    assert noise_cov["data"].shape == (256, 256)
    # N20: negativity over the left central scalp (contralateral to the right arm)
    pos = np.array([ch["loc"][:3] for ch in evoked.info["chs"]])
    n20 = evoked.copy().crop(lat["N20"], lat["N20"]).data[:, 0]
    assert pos[np.argmin(n20), 0] < -0.03


def test_load_spharapy_sep_without_the_lower_rim():
    pytest.importorskip("spharapy")
    full, _, meta_full = load_spharapy_sep(verbose="error")
    evoked, noise_cov, meta = load_spharapy_sep(min_height=0.03, verbose="error")
    z = np.array([ch["loc"][2] for ch in evoked.info["chs"]])
    assert len(evoked.ch_names) == 188 and z.min() >= 0.03
    assert noise_cov.ch_names == evoked.ch_names
    assert meta["latencies"] == meta_full["latencies"]  # from the whole cap
    # re-referenced to the kept electrodes' average
    np.testing.assert_allclose(evoked.data.mean(axis=0), 0, atol=1e-20)
    kept = [full.ch_names.index(n) for n in evoked.ch_names]
    expected = full.data[kept] - full.data[kept].mean(axis=0)
    np.testing.assert_allclose(evoked.data, expected, rtol=1e-9, atol=1e-20)
    with pytest.raises(ValueError, match="Only 0 electrodes lie above"):
        load_spharapy_sep(min_height=0.2, verbose="error")


def test_score_sep_on_a_synthetic_estimate(src):
    vertices = [s["vertno"] for s in src]
    n_lh = len(vertices[0])
    region, centre = expected_region("lh", src)
    data = np.zeros((n_lh + len(vertices[1]), 3))
    data[np.searchsorted(vertices[0], region[:5]), 1] = 1.0  # inside, left
    data[n_lh + 10, 1] = 0.5  # a weaker right-hemisphere source
    stc = mne.SourceEstimate(data, vertices, tmin=0.0, tstep=0.001)
    got = score_sep(stc, latency=0.001, hemi_expected="lh", window=0.0, src=src)
    assert got["peak_hemi"] == "lh" and got["in_region"] and got["distance_mm"] == 0
    assert got["energy_region"] == pytest.approx(5 / 5.25)
    assert got["energy_hemi"] == pytest.approx(5 / 5.25)
    other = score_sep(stc, latency=0.001, hemi_expected="rh", window=0.0, src=src)
    assert other["peak_hemi"] == "lh" and not other["in_region"]
    assert other["distance_mm"] > 40
    with pytest.raises(ValueError, match="No time"):
        score_sep(stc, latency=0.5, hemi_expected="lh", window=0.0, src=src)
