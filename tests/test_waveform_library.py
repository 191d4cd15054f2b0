"""Neural-mass simulation, spike extraction and the cached waveform library."""

import json

import numpy as np
import pytest

from mne_brainforge.simulation import library as wl
from mne_brainforge.simulation.library import (
    WaveformLibrary,
    build_waveform_library,
    fetch_waveform_library,
    read_waveform_library,
)
from mne_brainforge.simulation.neural_mass import (
    load_connectivity,
    simulate_jansen_rit,
    simulate_many,
)
from mne_brainforge.simulation.spikes import extract_background, extract_spikes

SPIKE_TIMES = np.array([1.5, 2.7, 4.1, 5.55, 7.3, 8.8])  # s, multiples of 10 ms
COINCIDENT = 5.55  # a large event in another region at this spike


def _bump(t, t0, width=0.015):
    return np.exp(-0.5 * ((t - t0) / width) ** 2)


def _synthetic(sfreq, noise=True, duration=10.0, seed=0):
    """3 regions: target with spikes, one region with a coincident event."""
    t = np.arange(int(round(duration * sfreq))) / sfreq
    rng = np.random.default_rng(seed)
    sig = np.empty((3, t.size))
    for i in range(3):
        # smooth deterministic background (same at every rate) + optional noise
        sig[i] = 0.3 * np.sin(2 * np.pi * (7 + i) * t + i) + 0.2 * np.sin(
            2 * np.pi * 1.3 * t
        )
        if noise:
            sig[i] += 0.1 * rng.standard_normal(t.size)
    sig[0] += 2.0  # resting offset, removed by the extraction
    for t0 in SPIKE_TIMES:
        sig[0] += 6.0 * _bump(t, t0)
    sig[1] += 5.0 * _bump(t, COINCIDENT + 0.03, width=0.03)
    return sig, t


def test_extract_spikes_synthetic():
    sig, _ = _synthetic(1000.0)
    wave, times, counts = extract_spikes(
        sig, 1000.0, 0, transient=0.5, return_counts=True
    )
    isolated = SPIKE_TIMES[SPIKE_TIMES != COINCIDENT]
    assert counts["n_candidates"] == len(SPIKE_TIMES)
    assert counts["n_not_isolated"] == 1
    assert times.shape == (len(isolated),)
    np.testing.assert_allclose(times, isolated, atol=0.003)
    # window (-0.2, 0.3) s at 1 kHz, peak at sample 200, offset removed (mV)
    assert wave.shape == (len(isolated), 501)
    assert np.all(wave.argmax(axis=1) == 200)
    np.testing.assert_allclose(wave[:, 200], 6.0, atol=0.5)
    assert np.all(np.abs(wave[:, :50].mean(axis=1)) < 0.5)
    # without the isolation criterion the coincident spike is kept
    _, times_all = extract_spikes(sig, 1000.0, 0, transient=0.5, isolation=None)
    np.testing.assert_allclose(times_all, SPIKE_TIMES, atol=0.003)
    # peak normalisation
    wave_n, _ = extract_spikes(sig, 1000.0, 0, transient=0.5, normalize=True)
    np.testing.assert_allclose(wave_n[:, 200], 1.0)
    # a region without spikes yields none
    wave2, times2 = extract_spikes(sig, 1000.0, 2, transient=0.5)
    assert wave2.shape == (0, 501) and times2.shape == (0,)


def test_windows_in_seconds():
    """The same trace sampled at two rates gives the same spikes."""
    sig_hi, _ = _synthetic(1000.0, noise=False)
    sig_lo, _ = _synthetic(500.0, noise=False)
    kw = dict(transient=0.5, window=(-0.1, 0.2), min_distance=0.15)
    w_hi, t_hi = extract_spikes(sig_hi, 1000.0, 0, **kw)
    w_lo, t_lo = extract_spikes(sig_lo, 500.0, 0, **kw)
    assert len(t_hi) == len(t_lo) == len(SPIKE_TIMES) - 1
    np.testing.assert_allclose(t_hi, t_lo, atol=0.002)
    assert w_hi.shape[1] == 301 and w_lo.shape[1] == 151
    # the peaks are on both grids, so every other high-rate sample matches
    np.testing.assert_allclose(w_hi[:, ::2], w_lo, atol=0.05)
    # resampling inside the extraction is equivalent
    w_rs, t_rs = extract_spikes(sig_hi, 1000.0, 0, sfreq_out=500.0, **kw)
    np.testing.assert_allclose(t_rs, t_lo, atol=0.002)
    assert w_rs.shape == w_lo.shape
    # background segments: lengths in seconds, away from the spikes
    for sig, sfreq in ((sig_hi, 1000.0), (sig_lo, 500.0)):
        seg, reg, onsets = extract_background(
            sig, sfreq, length=0.5, transient=0.5, threshold=5.0, guard=0.1
        )
        assert seg.shape[1] == int(0.5 * sfreq)
        assert len(seg) == len(reg) == len(onsets) > 0
        on0 = onsets[reg == 0]
        assert len(on0) > 0
        for t0 in SPIKE_TIMES:
            assert np.all((on0 > t0 + 0.05) | (on0 + 0.5 < t0 - 0.05))
        on1 = onsets[reg == 1]
        assert np.all((on1 > COINCIDENT + 0.1) | (on1 + 0.5 < COINCIDENT))


def test_extract_background_selection():
    sig, _ = _synthetic(500.0)
    seg, reg, on = extract_background(sig, 500.0, length=1.0, n_segments=3, seed=1)
    seg2, reg2, on2 = extract_background(sig, 500.0, length=1.0, n_segments=3, seed=1)
    assert seg.shape == (3, 500)
    np.testing.assert_array_equal(seg, seg2)
    np.testing.assert_array_equal(on, on2)
    assert np.all(np.abs(np.median(seg, axis=1)) < 0.5)  # resting level removed


def test_connectivity():
    conn = load_connectivity(verbose="error")
    assert conn.number_of_regions == 76
    assert conn.weights.max() == 1.0
    assert np.all(np.diag(conn.weights) == 0)
    with pytest.raises(ValueError, match="Unknown connectivity"):
        load_connectivity("connectivity_994")


def test_tvb_run_produces_target_spikes():
    sig, sfreq = simulate_jansen_rit(
        "connectivity_76", 5, duration=4.0, mu=0.095, noise=0.75, verbose="error"
    )
    assert sfreq == 1000.0
    assert sig.shape == (76, 4000)
    wave, times, counts = extract_spikes(
        sig, sfreq, 5, transient=0.5, return_counts=True
    )
    assert counts["n_candidates"] >= 2
    assert len(wave) >= 1
    assert np.all((times > 0.5) & (times < 4.0))
    # Jansen-Rit spikes: ~10 mV above rest; the other regions stay far below
    assert np.all((wave.max(axis=1) > 6) & (wave.max(axis=1) < 15))
    rest = np.median(sig[:, 500:], axis=1, keepdims=True)
    others = np.delete(sig[:, 500:] - rest, 5, axis=0)
    assert np.percentile(np.abs(others).max(axis=1), 50) < 4
    # deterministic in the seed; sfreq_out averages consecutive steps
    sig2, sfreq2 = simulate_jansen_rit(
        "connectivity_76",
        5,
        duration=4.0,
        mu=0.095,
        noise=0.75,
        sfreq_out=500.0,
        verbose="error",
    )
    assert sfreq2 == 500.0
    np.testing.assert_allclose(sig2, 0.5 * (sig[:, ::2] + sig[:, 1::2]), atol=1e-9)


def test_simulate_many_deterministic():
    kw = dict(settings=[(0.09, 0.75)], duration=2.0, seed=3, verbose="error")
    one = simulate_many([2, 7], n_jobs=1, **kw)
    two = simulate_many([2, 7], n_jobs=2, **kw)
    assert [r["region"] for r in two] == [2, 7]
    for a, b in zip(one, two):
        assert a["seed"] == b["seed"]
        np.testing.assert_array_equal(a["result"][0], b["result"][0])
    assert one[0]["seed"] != one[1]["seed"]


def _small_library(n_spikes=5, n_bg=3, info=None):
    rng = np.random.default_rng(0)
    return WaveformLibrary(
        spikes=rng.standard_normal((n_spikes, 26)),
        spike_region=np.arange(n_spikes),
        spike_setting=np.zeros(n_spikes),
        spike_seed=np.arange(n_spikes) * 10,
        spike_time=rng.uniform(1, 9, n_spikes),
        background=rng.standard_normal((n_bg, 50)),
        background_region=np.arange(n_bg),
        background_target=np.arange(n_bg),
        background_setting=np.zeros(n_bg),
        background_seed=np.arange(n_bg),
        background_time=rng.uniform(1, 9, n_bg),
        sfreq=50.0,
        tmin=-0.2,
        info={"settings": ((0.09, 0.75),)} if info is None else info,
    )


def _assert_same(a, b):
    for name in wl._ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    assert a.sfreq == b.sfreq and a.tmin == b.tmin and a.info == b.info


def test_save_load_round_trip(tmp_path):
    lib = _small_library()
    assert lib.spikes.dtype == np.float32 and lib.info["settings"] == [[0.09, 0.75]]
    fname = lib.save(tmp_path / "lib.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["lib.npz"]  # no temp left
    _assert_same(lib, read_waveform_library(fname))
    with pytest.raises(FileExistsError, match="overwrite"):
        lib.save(fname)
    lib.save(fname, overwrite=True)
    with pytest.raises(ValueError, match=".npz"):
        lib.save(tmp_path / "lib.h5")


def test_load_corrupt_files(tmp_path):
    fname = _small_library().save(tmp_path / "lib.npz")
    data = fname.read_bytes()
    # truncated (e.g. an interrupted copy)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="corrupt or incomplete.*rebuild"):
        read_waveform_library(trunc)
    # an edited array, the metadata left as it was
    with np.load(fname) as npz:
        content = {k: npz[k] for k in npz.files}
    edited = tmp_path / "edited.npz"
    np.savez_compressed(edited, **dict(content, spikes=content["spikes"] + 1))
    with pytest.raises(OSError, match="'spikes' fails its SHA-256"):
        read_waveform_library(edited)
    # a missing array
    del content["background"]
    partial = tmp_path / "partial.npz"
    np.savez_compressed(partial, **content)
    with pytest.raises(OSError, match="'background' is missing"):
        read_waveform_library(partial)
    # metadata edited to another format
    meta = json.loads(str(content["__meta__"][()]))
    meta["format"] = "something-else"
    content["__meta__"] = np.array(json.dumps(meta))
    other_fmt = tmp_path / "other_fmt.npz"
    np.savez_compressed(other_fmt, **content)
    with pytest.raises(ValueError, match="not a mne-brainforge waveform library"):
        read_waveform_library(other_fmt)
    # files that are not libraries
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ValueError, match="not a mne-brainforge waveform library"):
        read_waveform_library(other)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(OSError, match="not a readable .npz"):
        read_waveform_library(text)
    with pytest.raises(FileNotFoundError, match="build_waveform_library"):
        read_waveform_library(tmp_path / "missing.npz")


def test_fetch_builds_once_and_repairs(tmp_path, monkeypatch):
    recipe = wl._default_recipe()
    calls = []

    def fake_build(**kwargs):
        calls.append(kwargs)
        return _small_library(info={"recipe": recipe})

    monkeypatch.setattr(wl, "build_waveform_library", fake_build)
    fname = tmp_path / "sub" / "waveform_library.npz"
    lib = fetch_waveform_library(fname, verbose="error")
    assert len(calls) == 1 and fname.is_file()
    _assert_same(lib, fetch_waveform_library(fname, verbose="error"))
    assert len(calls) == 1  # cached
    fname.write_bytes(fname.read_bytes()[:100])  # corrupt -> rebuilt
    _assert_same(lib, fetch_waveform_library(fname, verbose="error"))
    assert len(calls) == 2
    fetch_waveform_library(fname, rebuild=True, verbose="error")
    assert len(calls) == 3
    # a library built with other parameters is rebuilt
    _small_library(info={"recipe": {"other": 1}}).save(fname, overwrite=True)
    fetch_waveform_library(fname, verbose="error")
    assert len(calls) == 4
    visible = [p.name for p in fname.parent.iterdir() if not p.name.startswith(".")]
    assert visible == ["waveform_library.npz"]


def test_build_small_library(tmp_path):
    lib = build_waveform_library(
        regions=[5],
        settings=[(0.095, 0.75)],
        duration=4.0,
        transient=0.5,
        n_background=2,
        n_jobs=1,
        verbose="error",
    )
    assert lib.n_spikes >= 1 and lib.spikes.shape[1] == 251
    assert lib.sfreq == 500.0 and lib.tmin == -0.2
    np.testing.assert_allclose(lib.times[[0, -1]], [-0.2, 0.3])
    assert np.all(lib.spike_region == 5) and np.all(lib.spike_setting == 0)
    assert np.all(lib.spikes.argmax(axis=1) == 100)
    assert lib.background.shape == (2, 500)
    assert np.all(lib.background_target == 5)
    info = lib.info
    assert info["connectivity"] == "connectivity_76" and info["n_regions"] == 76
    assert info["counts"]["n_spikes"] == lib.n_spikes
    assert info["versions"]["tvb-library"]
    _assert_same(lib, read_waveform_library(lib.save(tmp_path / "small.npz")))


@pytest.mark.parametrize(
    "func, kwargs, match",
    [
        (simulate_jansen_rit, dict(duration=-1.0), "duration must be a positive"),
        (simulate_jansen_rit, dict(dt=1.0), "dt must be at most"),
        (simulate_jansen_rit, dict(target_region=76), r"must be in \[0, 75\]"),
        (simulate_jansen_rit, dict(target_region=-1), "target_region must be in"),
        (simulate_jansen_rit, dict(sfreq_out=300.0), "must divide"),
        (simulate_jansen_rit, dict(noise=-1.0), "noise must be non-negative"),
        (extract_spikes, dict(window=(0.2, -0.1)), "tmin < tmax"),
        (extract_spikes, dict(window=(0.05, 0.2)), "contain the spike peak"),
        (extract_spikes, dict(target=3), r"target must be in \[0, 2\]"),
        (extract_spikes, dict(transient=-1.0), "transient must be"),
        (extract_spikes, dict(transient=20.0), "longer than the signals"),
        (extract_background, dict(length=-0.5), "length must be"),
        (build_waveform_library, dict(duration=-1.0), "duration"),
        (build_waveform_library, dict(window=(0.3, -0.2)), "tmin < tmax"),
        (build_waveform_library, dict(settings=[(0.09,)]), r"\(mu, noise\) pairs"),
        (simulate_many, dict(regions=[80]), "target_region must be in"),
    ],
)
def test_bad_arguments(func, kwargs, match):
    if func is simulate_jansen_rit:
        kwargs = dict(dict(connectivity="connectivity_76", target_region=0), **kwargs)
    elif func in (extract_spikes, extract_background):
        sig, _ = _synthetic(200.0, duration=3.0)
        kwargs = dict(dict(signals=sig, sfreq=200.0), **kwargs)
        if func is extract_spikes:
            kwargs.setdefault("target", 0)
    with pytest.raises(ValueError, match=match):
        func(**kwargs)


def test_default_build_recipe_matches_cache(monkeypatch):
    """A default build records the recipe that fetch_waveform_library expects."""
    seen = {}

    def fake_simulate_many(regions, settings, *, func, seed, **kwargs):
        seen.update(regions=regions, settings=settings, seed=seed, **kwargs)
        sig, _ = _synthetic(1000.0)
        return [
            dict(
                region=r,
                setting=0,
                seed=r,
                result=func(sig, 1000.0, r, 0, r),
                time_simulation=0.0,
                time_processing=0.0,
            )
            for r in (0, 1)
        ]

    monkeypatch.setattr(wl, "simulate_many", fake_simulate_many)
    lib = build_waveform_library(verbose="error")
    assert lib.info["recipe"] == wl._default_recipe()
    assert seen["regions"] is None and seen["seed"] == 0
    assert seen["duration"] == 10.0 and seen["dt"] == 1e-3
    assert len(seen["settings"]) == len(wl.DEFAULT_SETTINGS) >= 3
    # target 0 of the synthetic trace: 5 isolated spikes, the 6th coincides
    # with the event of region 1; as target, region 1's event coincides with
    # that spike of region 0: both are rejected
    assert lib.n_spikes == 5 and np.all(lib.spike_region == 0)
    assert lib.spikes.shape[1] == 251 and lib.background.shape[1] == 500
    assert lib.info["counts"]["n_not_isolated"] == 2
