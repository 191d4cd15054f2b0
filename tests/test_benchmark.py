"""Benchmark v2 through the one runner: quick scenario, report, win/loss statements."""

import json

import numpy as np
import pytest

from mne_brainforge.evaluation import SCENARIOS, make_methods, run_benchmark
from mne_brainforge.evaluation.benchmark import write_benchmark_report
from mne_brainforge.evaluation.report import markdown_table, source_group, verdicts
from mne_brainforge.evaluation.runner import _montage_rows, _union_info


def test_union_forward_rows_are_the_montage_forward(fwd32):
    """A montage's rows of the union forward equal the montage's own forward."""
    from mne_brainforge import make_fsaverage_forward

    union = make_fsaverage_forward(_union_info(("biosemi32", "biosemi16"), 250.0))
    rows = _montage_rows(union, "biosemi32")
    assert rows["info"]["ch_names"] == fwd32["info"]["ch_names"]
    np.testing.assert_allclose(
        rows["sol"]["data"], fwd32["sol"]["data"], rtol=1e-6, atol=0
    )


@pytest.mark.slow
def test_quick_benchmark(tmp_path):
    methods = ["sparse Bayes", "MxNE", "sLORETA"]
    records = run_benchmark(
        "quick", methods=methods, out_dir=tmp_path, figures=False, verbose=False
    )
    scenario = SCENARIOS["quick"]
    assert len(records) == len(methods) * len(scenario.cells())
    for rec in records:
        assert 0 <= rec["auc"] <= 1 and rec["time_s"] > 0
        assert rec["n_peaks"] >= 1
        if rec["n_sources"] == 1:  # the nearest peak vs the global maximum
            assert rec["largest_peaks_error"] >= rec["localization_error"] - 1e-9
        assert rec["head"] == "jitter-4mm" and rec["n_channels"] == 32
    single = {r["method"]: r for r in records if r["n_sources"] == 1}
    # sLORETA blurs (centimetres of dispersion); the sparse Bayesian solve does not
    assert 20 < single["sLORETA"]["spatial_dispersion"] < 80
    assert single["sparse Bayes"]["spatial_dispersion"] < 15
    assert single["sLORETA"]["localization_error"] < 15
    assert single["sparse Bayes"]["localization_error"] < 10
    text = (tmp_path / "results.md").read_text()
    assert "| sources | SNR dB | sparse Bayes | MxNE | sLORETA |" in text
    assert "| 1 | 10 |" in text
    assert "## Localization error of the largest peaks" in text
    blob = json.loads((tmp_path / "results.json").read_text())
    assert len(blob["records"]) == len(records) and blob["scenario"]["name"] == "quick"
    assert (tmp_path / "le_vs_snr.png").stat().st_size > 5000
    assert "PARTIAL" not in text
    # max_time=0 runs nothing new: it reports what the checkpoint holds
    again = run_benchmark(
        "quick", methods=methods, out_dir=tmp_path, figures=False, max_time=0
    )
    assert json.dumps(again) == json.dumps(records)  # separation NaN != NaN
    # a method added later runs alone: the others' records are kept as they were
    more = run_benchmark(
        "quick", methods=[*methods, "dSPM"], out_dir=tmp_path, figures=False
    )
    assert json.dumps(more[: len(records)]) == json.dumps(records)
    added = more[len(records) :]
    assert len(added) == len(scenario.cells())
    assert {r["method"] for r in added} == {"dSPM"}
    # fewer methods: the report is of those, the checkpoint keeps every record
    alone = run_benchmark(
        "quick", methods=["dSPM"], out_dir=tmp_path, figures=False, max_time=0
    )
    assert json.dumps(alone) == json.dumps(added)
    held = json.loads((tmp_path / "checkpoint.json").read_text())["records"]
    assert len(held) == len(more)
    first = [r for r in records if r["n_sources"] == 1]
    write_benchmark_report(first, tmp_path / "partial", n_planned=2)
    text = (tmp_path / "partial" / "results.md").read_text()
    assert text.startswith("# Benchmark v2 results: PARTIAL (1 of 2 cases)")
    with pytest.raises(RuntimeError, match="No case ran"):
        run_benchmark(
            "quick",
            methods=methods,
            out_dir=tmp_path / "new",
            figures=False,
            max_time=0,
        )


def test_report_states_losses():
    records = [
        dict(
            method=m,
            n_sources=n,
            snr_db=10.0,
            localization_error=le,
            spatial_dispersion=5.0,
            auc=0.9,
        )
        for m, n, le in [
            ("BrainForge", 1, 3.0),
            ("sLORETA", 1, 5.0),
            ("BrainForge", 2, 12.0),
            ("sLORETA", 2, 9.0),
        ]
    ]
    by = lambda r: (source_group(r["n_sources"]), r["snr_db"])  # noqa: E731
    lines = verdicts(records, "BrainForge", by, "sources | SNR dB")
    assert lines[0].startswith("- sources | SNR dB 1 | 10: BrainForge wins, LE 3.0")
    assert "**BrainForge loses**, LE 12.0 mm vs 9.0 mm for sLORETA" in lines[1]
    table = markdown_table(records, by, "sources | SNR dB", ["BrainForge", "sLORETA"])
    assert "| 1 | 10 | **3.0 / 5.0 / 0.90** | 5.0 / 5.0 / 0.90 |" in table
    assert "| 2-3 | 10 | 12.0 / 5.0 / 0.90 | **9.0 / 5.0 / 0.90** |" in table


def test_methods_by_name():
    methods = make_methods(["sLORETA", "gamma-MAP", "sparse Bayes"])
    assert list(methods) == ["sLORETA", "gamma-MAP", "sparse Bayes"]
    with pytest.raises(ValueError, match="method"):
        make_methods(["LORETA"])
