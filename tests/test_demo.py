"""``brainforge demo``: the main job end to end, with a tiny model."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mne_brainforge import cli
from mne_brainforge.evaluation.demo import DEMO_METHODS


@pytest.fixture(scope="module")
def tiny_model_file(tiny_model, tmp_path_factory):
    fname = tmp_path_factory.mktemp("model") / "tiny.pt"
    tiny_model.save(fname)
    return fname


def test_demo_refuses_bad_input_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit, match="montage 'nope'"):
        cli.main(["demo", "--out-dir", str(tmp_path), "--montage", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["demo", "--out-dir", str(tmp_path), "--n-sources", "0"])
    assert "--n-sources" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.render
def test_demo_end_to_end(tiny_model_file, tmp_path, capsys, render_3d):
    """The CLI runs the demo; cortex figures only where 3D rendering is possible."""
    out_dir = tmp_path / "demo"
    argv = ["demo", "--out-dir", str(out_dir), "--montage", "biosemi32"]
    argv += ["--model", str(tiny_model_file), "--n-sources", "1", "--n-trials", "1"]
    argv += ["--no-real-data"]  # the SEP: tests/test_real_data.py
    assert cli.main(argv if render_3d else [*argv, "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "# Demo results" in printed and f"Outputs in {out_dir}" in printed
    blob = json.loads((out_dir / "results.json").read_text())
    records = {r["method"]: r for r in blob["records"]}
    assert list(records) == list(DEMO_METHODS)
    for rec in records.values():
        assert rec["n_sources"] == 1 and rec["snr_db"] == 10.0
        assert rec["head"] == "jitter-4mm+skull-1/40" and rec["n_channels"] == 32
        assert 0 <= rec["auc"] <= 1 and rec["time_s"] > 0
    # real thresholds: one source at 10 dB through the mismatched head
    assert records["sparse Bayes"]["localization_error"] < 10
    assert records["sparse Bayes"]["spatial_dispersion"] < 15
    assert records["BrainForge"]["localization_error"] < 10  # never worse than flat
    assert records["sLORETA"]["localization_error"] < 15
    assert records["sLORETA"]["spatial_dispersion"] > 20  # the blur of linear methods
    table = (out_dir / "results.md").read_text()
    assert table in printed and "| 1 | 10 |" in table
    figures = sorted(out_dir.glob("cortex-*.png"))
    if not render_3d:
        assert not figures
        return
    assert [f.name for f in figures] == ["cortex-1-sources.png"]
    assert "](cortex-1-sources.png)" in table
    image = plt.imread(figures[0])
    # coloured cortex, not grey: the linear maps are wide, the sparse ones dots
    painted = np.ptp(image[..., :3], axis=-1) > 0.25
    assert painted.mean() > 0.002
