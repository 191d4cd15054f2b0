"""The benchmark harness: inverse crime as a self-check, and a quick run."""

import mne
import numpy as np
import pytest

from mne_brainforge import make_fsaverage_forward, metrics
from mne_brainforge.datasets import read_fsaverage_source_space
from mne_brainforge.evaluation.benchmark import (
    ELECTRODE_JITTER,
    TRUE_HEAD,
    run_benchmark,
)
from mne_brainforge.head import jitter_electrodes, make_montage_info
from mne_brainforge.head.parcellation import source_graph
from mne_brainforge.inverse import CLASSICAL, MNEInverse


def _single_dipole_errors(fwd_true, fwd, info, vertices):
    """LE (mm) of sLORETA for noiseless single dipoles simulated with fwd_true."""
    fixed = mne.convert_forward_solution(
        fwd_true, surf_ori=True, force_fixed=True, verbose=False
    )
    src = read_fsaverage_source_space()
    graph = source_graph(src, verbose=False)
    cov = mne.make_ad_hoc_cov(info, verbose=False)
    sloreta = MNEInverse("sLORETA", loose=0.0)  # the dipoles are cortex-normal
    wave = np.hanning(20)
    errors = []
    for k in vertices:
        evoked = mne.EvokedArray(
            np.outer(fixed["sol"]["data"][:, k], wave), info, verbose=False
        )
        evoked.set_eeg_reference(projection=True, verbose=False)
        data = np.zeros((20484, 20))
        data[k] = wave
        truth = metrics.GroundTruth(
            mne.SourceEstimate(data, [s["vertno"] for s in src], 0, 0.004), [[k]], [k]
        )
        errors.append(
            metrics.localization_error(sloreta(evoked, fwd, cov), truth, src, graph)
        )
    return np.array(errors)


@pytest.mark.slow
def test_inverse_crime_is_exact_and_mismatch_is_not():
    info = make_montage_info(32)
    with pytest.raises(ValueError, match="one of"):
        make_montage_info(48)
    fwd = make_fsaverage_forward(info, verbose=False)
    vertices = np.random.default_rng(0).choice(20484, 8, replace=False)
    crime = _single_dipole_errors(fwd, fwd, info, vertices)
    assert np.all(crime == 0.0)  # sLORETA: zero error for one noiseless dipole
    info_true = jitter_electrodes(info, ELECTRODE_JITTER, np.random.default_rng(1))
    fwd_true = make_fsaverage_forward(info_true, **TRUE_HEAD, verbose=False)
    honest = _single_dipole_errors(fwd_true, fwd, info, vertices)
    assert honest.mean() > 2.0 and np.sum(honest > 0) >= 2  # measured: 3.5 mm, 3 of 8


@pytest.mark.slow
def test_quick_benchmark(tmp_path):
    records = run_benchmark(size="quick", out_dir=tmp_path, verbose=False)
    assert {r["method"] for r in records} == set(CLASSICAL)
    assert len(records) == len(CLASSICAL) * 2  # 1 and 2 sources, one trial each
    for rec in records:
        assert (
            0 <= rec["auc"] <= 1 and rec["spatial_dispersion"] > 0 and rec["time_s"] > 0
        )
    single = {r["method"]: r for r in records if r["n_sources"] == 1}
    # the classical methods blur: centimetres of dispersion, as published
    assert all(
        20 < single[m]["spatial_dispersion"] < 80 for m in ("MNE", "sLORETA", "eLORETA")
    )
    assert single["sLORETA"]["localization_error"] < 30
    for name in ("results.json", "results.md", "metrics_vs_snr.png"):
        assert (tmp_path / name).stat().st_size > 500
    assert "| 1 | 10 | sLORETA |" in (tmp_path / "results.md").read_text()
