"""``brainforge demo``: the main job end to end, with a tiny model."""

import json
import os

import matplotlib.pyplot as plt
import mne
import numpy as np
import pytest

from mne_brainforge import cli
from mne_brainforge.evaluation.demo import run_demo
from mne_brainforge.training import train_model

METHODS = ("BrainForge", "sLORETA", "eLORETA", "dSPM")


@pytest.fixture(scope="module")
def tiny_model_file(fwd32, spike_library, tmp_path_factory):
    model = train_model(
        fwd32,
        library=spike_library,
        n_regions=60,
        steps=4,
        batch_size=4,
        val_every=4,
        val_samples=2,
        net_kwargs=dict(d_model=32),
        num_workers=0,
        verbose=False,
    )
    fname = tmp_path_factory.mktemp("model") / "tiny.pt"
    model.save(fname)
    return fname


def test_demo_needs_a_model(tmp_path, monkeypatch):
    import mne_brainforge.weights

    monkeypatch.setattr(mne_brainforge.weights, "list_weights", lambda: [])
    with pytest.raises(ValueError, match="--model PATH"):
        run_demo(tmp_path)
    with pytest.raises(SystemExit, match="--model PATH"):
        cli.main(["demo", "--out-dir", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # failed before any work


@pytest.mark.slow
@pytest.mark.render
def test_demo_end_to_end(tiny_model_file, tmp_path, capsys):
    """The CLI runs the demo; cortex figures only where 3D rendering is possible."""
    render = (
        bool(os.environ.get("DISPLAY"))
        or os.environ.get("BRAINFORGE_REQUIRE_3D") == "1"
    )
    out_dir = tmp_path / "demo"
    argv = [
        "demo",
        "--out-dir",
        str(out_dir),
        "--montage",
        "biosemi32",
        "--model",
        str(tiny_model_file),
        "--n-sources",
        "1",
        "2",
        "--no-head-figures",
    ]
    assert cli.main(argv if render else [*argv, "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert (
        "# BrainForge vs classical inverses" in printed
        and f"Outputs in {out_dir}" in printed
    )

    fwd = mne.read_forward_solution(
        out_dir / "fsaverage-biosemi32-fwd.fif", verbose=False
    )
    assert fwd["nchan"] == 32 and fwd["nsource"] == 20484
    records = json.loads((out_dir / "results.json").read_text())
    assert [(r["n_sources"], r["method"]) for r in records] == [
        (n, m) for n in (1, 2) for m in METHODS
    ]
    for rec in records:
        assert 0 <= rec["localization_error"] < 200, rec  # mm, within a head
        assert 0 <= rec["spatial_dispersion"] < 200, rec
        assert 0 <= rec["auc"] <= 1 and 0 < rec["time_s"] < 120, rec
        assert rec["snr_db"] == 10.0 and rec["noise"] in ("white", "pink", "spatial")
    for (
        rec
    ) in records:  # the classical methods localize at 10 dB despite the head mismatch
        if rec["method"] != "BrainForge":
            assert rec["auc"] > 0.7, rec
            if rec["n_sources"] == 1:
                assert rec["localization_error"] < 50, rec

    table = (out_dir / "results.md").read_text()
    assert table in printed
    for method in METHODS:
        assert table.count(f"| {method} |") == 3  # 2 cases + the summary
    assert "`" + str(tiny_model_file) + "`: 60 regions" in table
    assert (
        "| sources | trial | noise | method | LE mm | SD mm | AUC | corr | time s |"
        in table
    )

    figures = sorted(out_dir.glob("cortex-*.png"))
    if not render:
        assert not figures
        return
    assert [f.name for f in figures] == ["cortex-1source.png", "cortex-2sources.png"]
    for fname in figures:
        assert f"]({fname.name})" in table
        image = plt.imread(fname)
        # 5 panels (truth + 4 methods) in rows of 2, split hemispheres of 3 views
        assert image.shape[0] > 3 * 3 * 190 and image.shape[1] == 2 * 2 * 260
        painted = (
            np.ptp(image[..., :3], axis=-1) > 0.25
        )  # coloured cortex, not white or grey
        assert painted.mean() > 0.01
