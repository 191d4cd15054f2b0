"""apply_brainforge_inverse(_raw, _epochs) and compare_inverse_methods."""

import functools
import inspect
import sys
import tracemalloc
import types

import mne
import numpy as np
import pytest
from mne.utils import catch_logging

from mne_brainforge import inverse
from mne_brainforge.inverse import (
    _core,
    compare_inverse_methods,
    plot_inverse_comparison,
)

# 15 iterations instead of 50 keep the suite fast: strong sources converge sooner,
# and every comparison below runs both sides with the same settings
N_ITER = 15
apply_brainforge_inverse = functools.partial(
    inverse.apply_brainforge_inverse, n_iter=N_ITER
)
apply_brainforge_inverse_raw = functools.partial(
    inverse.apply_brainforge_inverse_raw, n_iter=N_ITER
)
apply_brainforge_inverse_epochs = functools.partial(
    inverse.apply_brainforge_inverse_epochs, n_iter=N_ITER
)
apply_sparse_bayes = functools.partial(inverse.apply_sparse_bayes, n_iter=N_ITER)


def _info(fwd, sfreq=250.0, extra=()):
    names = fwd["info"]["ch_names"]
    info = mne.create_info(
        names + [n for n, _ in extra],
        sfreq,
        ["eeg"] * len(names) + [t for _, t in extra],
    )
    info.set_montage("biosemi32", on_missing="ignore")
    return info


_GAIN = {}


@pytest.fixture(scope="module", autouse=True)
def gain32(fwd32):
    """The gain the simulated EEG of this module is made with (the methods' own)."""
    _GAIN["fwd32"] = _core._fixed_gain(fwd32)[0]
    return _GAIN["fwd32"]


#: Two cortical sources (forward indices) 4-5 cm apart, not deep.
SOURCES = (3000, 15000)


def _eeg(n_times, sfreq=250.0, seed=0, n_channels=32, *, gain=None, snr=20.0):
    """EEG (V) of two oscillating cortical sources plus white noise at ``snr`` dB."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / sfreq
    moments = 20e-9 * np.array(
        [np.sin(2 * np.pi * 7 * t), np.cos(2 * np.pi * 11 * t + 0.3)]
    )
    gain = _GAIN["fwd32"] if gain is None else gain
    signal = gain[:n_channels, list(SOURCES)] @ moments
    noise = rng.standard_normal(signal.shape)
    noise *= np.linalg.norm(signal) / np.linalg.norm(noise) / 10 ** (snr / 20)
    return signal + noise


def _peaks(stc, n=2):
    """Forward indices of the ``n`` sources with the largest energy."""
    return np.argsort(np.sum(stc.data**2, axis=1))[::-1][:n]


def _distance_mm(fwd, a, b):
    pos = np.concatenate([s["rr"][s["vertno"]] for s in fwd["src"]])
    return 1e3 * np.linalg.norm(pos[a] - pos[b])


@pytest.fixture(scope="module")
def evoked(fwd32):
    info = _info(fwd32, extra=[("EOG1", "eog")])
    data = np.concatenate([_eeg(175), np.zeros((1, 175))])
    evoked = mne.EvokedArray(data, info, tmin=-0.2)
    evoked.info["bads"] = ["Fp1"]
    return evoked


def _same(stc_a, stc_b, rtol=0.0):
    assert stc_a.shape == stc_b.shape
    np.testing.assert_allclose(stc_a.times, stc_b.times, atol=1e-12)
    scale = np.abs(stc_b.data).max()
    assert scale > 0
    np.testing.assert_allclose(stc_a.data, stc_b.data, rtol=0, atol=rtol * scale)


# ---------------------------------------------------------------------------- Evoked


def test_estimate_shape_time_and_units(tiny_model, fwd32, evoked):
    before = evoked.copy()
    with catch_logging(verbose=True) as log:
        stc, residual, std = apply_brainforge_inverse(
            evoked, fwd32, tiny_model, return_residual=True, return_uncertainty=True
        )
    log = log.getvalue()
    assert "Evidence: the" in log and "explained variance" in log
    assert isinstance(stc, mne.SourceEstimate) and stc.subject == "fsaverage"
    assert stc.data.shape == (20484, 175)
    np.testing.assert_allclose(stc.times, evoked.times)
    assert [len(v) for v in stc.vertices] == [10242, 10242]
    # both sources found where they are (the methods' own head here), sparse
    for true in SOURCES:
        assert min(_distance_mm(fwd32, true, p) for p in _peaks(stc)) < 5
    assert np.count_nonzero(np.abs(stc.data).max(1)) < 2000
    # moments in A·m: the right order of magnitude (20 nA·m sources)
    assert 3e-9 < np.abs(stc.data).max() < 1e-7
    assert "Fp1" not in residual.ch_names and "EOG1" not in residual.ch_names
    assert residual.data.shape == (31, 175)
    # the residual is exactly P (data - L J), P the average reference
    data = evoked.copy().pick(residual.ch_names).data
    gain = _core._fixed_gain(fwd32)[0][
        [fwd32.ch_names.index(c) for c in residual.ch_names]
    ]
    expected = data - gain @ stc.data
    np.testing.assert_allclose(
        residual.data, expected - expected.mean(0), atol=1e-12 * np.abs(data).max()
    )
    assert np.linalg.norm(residual.data) < 0.2 * np.linalg.norm(data - data.mean(0))
    assert std.data.shape == (20484, 1) and np.all(std.data >= 0)
    assert mne.utils.object_diff(evoked, before) == ""


def test_prior_modes(tiny_model, fwd32, evoked):
    """'flat' is plain sparse Bayes; 'evidence' keeps the better of the two starts."""
    flat = apply_brainforge_inverse(evoked, fwd32, tiny_model, prior_mode="flat")
    _same(flat, apply_sparse_bayes(evoked, fwd32))
    from_prior = apply_brainforge_inverse(evoked, fwd32, tiny_model, prior_mode="prior")
    with catch_logging(verbose=True) as log:
        chosen = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    winner = "prior" if "the prior start won" in log.getvalue() else "flat"
    _same(chosen, from_prior if winner == "prior" else flat)
    with pytest.raises(ValueError, match="prior_mode"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model, prior_mode="network")


def test_long_data_is_windowed(tiny_model, fwd32, evoked):
    long = mne.EvokedArray(np.tile(evoked.data, 4), evoked.info, tmin=0.0)
    stc = apply_brainforge_inverse(long, fwd32, tiny_model, n_iter=10)
    assert stc.data.shape == (20484, 700) and np.all(np.isfinite(stc.data))


def test_clear_errors(tiny_model, fwd32, evoked):
    with pytest.raises(ValueError, match="list_weights"):
        apply_brainforge_inverse(evoked, fwd32, "no-such-weights")
    restricted = mne.forward.restrict_forward_to_stc(
        fwd32,
        mne.SourceEstimate(np.zeros((200, 1)), [np.arange(100), np.arange(100)], 0, 1),
    )
    with pytest.raises(ValueError, match="train_model"):
        apply_brainforge_inverse(evoked, restricted, tiny_model)
    with pytest.raises(ValueError, match="pick_ori"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model, pick_ori="vector")
    with pytest.raises(TypeError, match="mne.Evoked"):
        apply_brainforge_inverse(evoked.data, fwd32, tiny_model)
    raw = mne.io.RawArray(evoked.data, evoked.info, verbose=False)
    with pytest.raises(TypeError, match="apply_brainforge_inverse_raw"):
        apply_brainforge_inverse_epochs(raw, fwd32, tiny_model)
    with pytest.raises(TypeError, match="apply_brainforge_inverse_epochs"):
        apply_brainforge_inverse_raw(
            mne.EpochsArray(evoked.data[None], evoked.info), fwd32, tiny_model
        )
    with pytest.raises(TypeError, match="mne.Forward"):
        apply_brainforge_inverse(evoked, "fwd.fif", tiny_model)
    with pytest.raises(TypeError, match="noise_cov"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model, noise_cov=np.eye(32))
    cov = mne.make_ad_hoc_cov(evoked.info, verbose=False)
    with pytest.raises(TypeError, match="noise_cov=noise_cov"):  # cov as the model
        apply_brainforge_inverse(evoked, fwd32, cov)
    with pytest.raises(ValueError, match="start"):
        apply_brainforge_inverse_raw(raw, fwd32, tiny_model, start=100, stop=50)
    # fewer than 8 usable channels
    few = evoked.copy().pick(evoked.ch_names[:7])
    with pytest.raises(ValueError, match="Only 6 good.*at least 8"):
        apply_brainforge_inverse(few, fwd32, tiny_model)


def test_model_argument(tiny_model, fwd32, evoked, tmp_path, monkeypatch):
    """None, a registered name, a file, a model; anything else is an error."""
    calls = []

    def load_pretrained(name="fsaverage-brainforge"):
        calls.append(name)
        if name == "missing":
            raise FileNotFoundError("Download https://example.org/missing.pt")
        return tiny_model

    names = ["fsaverage-brainforge", "missing"]
    fake = types.SimpleNamespace(
        load_pretrained=load_pretrained, list_weights=lambda: names
    )
    monkeypatch.setitem(sys.modules, "mne_brainforge.weights", fake)
    expected = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    _same(apply_brainforge_inverse(evoked, fwd32), expected)
    _same(apply_brainforge_inverse(evoked, fwd32, "fsaverage-brainforge"), expected)
    assert calls == ["fsaverage-brainforge", "fsaverage-brainforge"]
    with pytest.raises(FileNotFoundError, match="Download"):  # the weights' own error
        apply_brainforge_inverse(evoked, fwd32, "missing")
    fname = tmp_path / "tiny.pt"
    tiny_model.save(fname)
    _same(apply_brainforge_inverse(evoked, fwd32, fname), expected)
    _same(apply_brainforge_inverse(evoked, fwd32, str(fname)), expected)
    for bogus in ("nope", tmp_path / "nope.pt", 3):
        with pytest.raises(
            ValueError, match=r"'fsaverage-brainforge', 'missing'.*BrainForgeModel"
        ):
            apply_brainforge_inverse(evoked, fwd32, bogus)


# ---------------------------------------------------------------------------- Raw


def _similar(stc_a, stc_b, min_corr=0.99):
    a, b = np.sum(stc_a.data**2, axis=1), np.sum(stc_b.data**2, axis=1)
    assert np.corrcoef(a, b)[0, 1] > min_corr


def test_raw_matches_evoked_and_start_stop(tiny_model, fwd32, evoked):
    raw = mne.io.RawArray(evoked.data, evoked.info, verbose=False)
    # same data: the same sources (the raw solve learns from the data covariance)
    expected = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    stc = apply_brainforge_inverse_raw(raw, fwd32, tiny_model)
    _similar(stc, expected)
    info = _info(fwd32)
    raw = mne.io.RawArray(_eeg(3000), info, verbose=False)
    before = raw.copy()
    stc = apply_brainforge_inverse_raw(raw, fwd32, tiny_model, start=500, stop=1800)
    assert stc.shape == (20484, 1300)
    assert stc.tmin == pytest.approx(2.0) and stc.tstep == pytest.approx(1 / 250)
    np.testing.assert_allclose(stc.times, raw.times[500:1800])
    # the delayed (kernel, data) form: the linear kernel and the sensor data
    assert stc._kernel.shape == (20484, 32) and stc._sens_data.shape == (32, 1300)
    for true in SOURCES:
        assert min(_distance_mm(fwd32, true, p) for p in _peaks(stc)) < 5
    part = mne.EvokedArray(raw.get_data(start=500, stop=1800), info, tmin=2.0)
    _similar(stc, apply_brainforge_inverse(part, fwd32, tiny_model))
    # stop past the end is clipped like a slice; start alone
    tail = apply_brainforge_inverse_raw(raw, fwd32, tiny_model, start=2900, stop=10**6)
    assert tail.shape[1] == 100
    assert mne.utils.object_diff(raw, before) == ""


def test_batches_and_chunks_do_not_change_the_estimate(tiny_model, fwd32, monkeypatch):
    """Spans resampled separately and batches of windows give the one-pass result."""
    raw = mne.io.RawArray(
        _eeg(1280, sfreq=128.0), _info(fwd32, sfreq=128.0), verbose=False
    )
    reads = []
    get_data = raw.get_data
    monkeypatch.setattr(
        raw, "get_data", lambda *a, **k: reads.append(a) or get_data(*a, **k)
    )
    expected = apply_brainforge_inverse_raw(raw, fwd32, tiny_model)  # 10 s, 19 windows
    # one read to scan, one batch of windows, one covariance chunk, the data
    assert len(reads) == 4
    monkeypatch.setattr(_core, "BATCH_WINDOWS", 3)
    monkeypatch.setattr(_core, "CHUNK_SAMPLES", 300)
    reads.clear()
    stc = apply_brainforge_inverse_raw(raw, fwd32, tiny_model)
    assert len(reads) == 5 + 7 + 5 + 1
    _same(stc, expected, rtol=1e-4)  # float32 network on other batch sizes


def test_long_raw_bounded_memory(tiny_model, fwd32):
    """60 s of 32 channels at 250 Hz: memory of the kernel and the data, not sources."""
    raw = mne.io.RawArray(_eeg(15000), _info(fwd32), verbose=False)

    def peak_memory(**kwargs):
        tracemalloc.start()
        try:
            stc = apply_brainforge_inverse_raw(
                raw, fwd32, tiny_model, verbose="error", **kwargs
            )
            return stc, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    _, base = peak_memory(stop=250)  # 1 s: the solve's gain and whitener etc.
    stc, peak = peak_memory()
    assert stc.shape == (20484, 15000)
    data = 32 * 15000 * 8  # the sensor data of the estimate: 3.8 MB
    kernel = 20484 * 32 * 8  # sources x channels kernel: 5.2 MB
    sources = 20484 * 15000 * 8  # what stc.data would take: 2.5 GB
    assert peak < base + 3 * (data + kernel), (base / 1e6, peak / 1e6)
    assert peak < sources / 20
    full = stc.copy()
    part = mne.SourceEstimate(
        full.data[:, 7500:7751], full.vertices, tmin=30.0, tstep=full.tstep
    )
    assert np.all(np.isfinite(part.data)) and np.abs(part.data).max() > 0


def test_raw_from_disk(tiny_model, fwd32, tmp_path):
    info = _info(fwd32, extra=[("EOG1", "eog"), ("STI", "stim")])
    data = np.concatenate([_eeg(2000), np.zeros((2, 2000))])
    fname = tmp_path / "test_raw.fif"
    mne.io.RawArray(data, info, verbose=False).save(fname, verbose=False)
    on_disk = mne.io.read_raw_fif(fname, preload=False, verbose=False)
    loaded = mne.io.read_raw_fif(fname, preload=True, verbose=False)
    stc = apply_brainforge_inverse_raw(on_disk, fwd32, tiny_model, start=100, stop=1900)
    _same(
        stc,
        apply_brainforge_inverse_raw(loaded, fwd32, tiny_model, start=100, stop=1900),
    )
    assert not on_disk.preload


# ---------------------------------------------------------------------------- Epochs


def test_epochs(tiny_model, fwd32):
    info = _info(fwd32, extra=[("STI", "stim")])
    data = np.concatenate([_eeg(5000), np.zeros((1, 5000))])
    data[-1, 500:4600:500] = 1
    raw = mne.io.RawArray(data, info, verbose=False)
    events = mne.find_events(raw, verbose=False)
    kwargs = dict(tmin=-0.2, tmax=0.5, baseline=None, verbose=False)
    epochs = mne.Epochs(raw, events, preload=True, **kwargs)
    before = epochs.copy()
    stcs = apply_brainforge_inverse_epochs(epochs, fwd32, tiny_model)
    assert isinstance(stcs, list) and len(stcs) == len(events) == 9
    for k in (0, 4, 8):
        evoked = mne.EvokedArray(epochs.get_data()[k], epochs.info, tmin=epochs.tmin)
        _similar(stcs[k], apply_brainforge_inverse(evoked, fwd32, tiny_model))
    np.testing.assert_allclose(stcs[0].times, epochs.times)
    gen = apply_brainforge_inverse_epochs(
        epochs, fwd32, tiny_model, return_generator=True
    )
    assert inspect.isgenerator(gen)
    _same(next(gen), stcs[0])
    assert sum(1 for _ in gen) == 8
    # not preloaded: read on the fly, the Epochs object left as it was
    lazy = mne.Epochs(raw, events, preload=False, **kwargs)
    lazy_before = lazy.copy()
    for stc, expected in zip(
        apply_brainforge_inverse_epochs(lazy, fwd32, tiny_model), stcs
    ):
        _same(stc, expected)
    for ep, ep_before in ((epochs, before), (lazy, lazy_before)):
        assert _state_diff(ep, ep_before) == []


def _state_diff(a, b):
    """object_diff of every attribute (it cannot compare Epochs as a whole)."""
    diffs = []
    for key in sorted(set(vars(a)) | set(vars(b))):
        x, y = vars(a).get(key), vars(b).get(key)
        try:
            diff = mne.utils.object_diff(x, y)
        except RuntimeError:  # e.g. slices
            diff = "" if x == y else f"{x} vs {y}"
        if diff:
            diffs.append((key, diff))
    return diffs


# ---------------------------------------------------------------------------- channels


def test_channel_selection(tiny_model, fwd32):
    info = _info(fwd32)
    evoked = mne.EvokedArray(_eeg(300, seed=1), info, tmin=-0.1)
    expected = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    # order of the channels in the data does not matter
    order = np.random.default_rng(0).permutation(evoked.ch_names).tolist()
    _same(
        apply_brainforge_inverse(
            evoked.copy().reorder_channels(order), fwd32, tiny_model
        ),
        expected,
        rtol=1e-6,
    )
    # non-EEG channels and EEG channels not in the forward are ignored
    others = [("EOG1", "eog"), ("STI", "stim"), ("MEG1", "mag"), ("EXTRA", "eeg")]
    noise = np.random.default_rng(1).standard_normal((4, 300))
    extra = mne.EvokedArray(
        np.concatenate([evoked.data, noise]), _info(fwd32, extra=others), tmin=-0.1
    )
    _same(apply_brainforge_inverse(extra, fwd32, tiny_model), expected, rtol=1e-6)
    # a bad channel is a dropped channel; a forward channel missing from the data is left out
    dropped = apply_brainforge_inverse(
        evoked.copy().drop_channels(["Cz", "O2"]), fwd32, tiny_model
    )
    bads = evoked.copy()
    bads.info["bads"] = ["Cz", "O2"]
    _same(apply_brainforge_inverse(bads, fwd32, tiny_model), dropped)
    assert (
        np.abs(dropped.data - expected.data).max() > 1e-3 * np.abs(expected.data).max()
    )


def test_reference_free(tiny_model, fwd32):
    """Average reference inside: any recording reference gives the same estimate."""
    info = _info(fwd32)
    evoked = mne.EvokedArray(_eeg(300, seed=2), info, tmin=-0.1)
    expected = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    cz = evoked.copy().set_eeg_reference(["Cz"], verbose=False)  # Cz is zero: kept
    assert np.all(cz.copy().pick(["Cz"]).data == 0)
    _same(apply_brainforge_inverse(cz, fwd32, tiny_model), expected, rtol=1e-6)
    linked = evoked.copy().set_eeg_reference(["T7", "T8"], verbose=False)
    _same(apply_brainforge_inverse(linked, fwd32, tiny_model), expected, rtol=1e-6)
    avg_proj = evoked.copy().set_eeg_reference(projection=True, verbose=False)
    _same(apply_brainforge_inverse(avg_proj, fwd32, tiny_model), expected, rtol=1e-6)
    _same(
        apply_brainforge_inverse(avg_proj.apply_proj(verbose=False), fwd32, tiny_model),
        expected,
        rtol=1e-6,
    )


def test_projectors_are_applied(tiny_model, fwd32):
    """An SSP vector in info['projs'] is projected out of data and forward, active or not."""
    evoked = mne.EvokedArray(_eeg(300, seed=3), _info(fwd32), tmin=0.0)
    vector = np.random.default_rng(4).standard_normal(32)
    proj = mne.Projection(
        data=dict(
            nrow=1,
            ncol=32,
            row_names=None,
            col_names=evoked.ch_names,
            data=vector[None] / np.linalg.norm(vector),
        ),
        desc="artifact",
        kind=1,
        active=False,
    )
    with_proj = evoked.copy().add_proj([proj])
    expected = apply_brainforge_inverse(with_proj, fwd32, tiny_model)
    _same(
        apply_brainforge_inverse(
            with_proj.copy().apply_proj(verbose=False), fwd32, tiny_model
        ),
        expected,
        rtol=1e-6,
    )
    # an artifact along the vector, 100 times the EEG, is removed
    artifact = np.outer(vector, np.hanning(300)) * 100 * np.abs(evoked.data).max()
    with_artifact = with_proj.copy()
    with_artifact.data = evoked.data + artifact
    _same(
        apply_brainforge_inverse(with_artifact, fwd32, tiny_model), expected, rtol=1e-6
    )
    plain = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    assert np.abs(plain.data - expected.data).max() > 1e-3 * np.abs(expected.data).max()


def test_bad_values(tiny_model, fwd32):
    info = _info(fwd32)
    data = _eeg(300, seed=5)
    for value in (np.nan, np.inf):
        broken = data.copy()
        broken[info.ch_names.index("Pz"), 10] = value
        with pytest.raises(ValueError, match="channel.*Pz.*NaN or infinite"):
            apply_brainforge_inverse(mne.EvokedArray(broken, info), fwd32, tiny_model)
        evoked = mne.EvokedArray(broken, info)
        evoked.info["bads"] = ["Pz"]  # a bad channel's values do not matter
        assert np.all(
            np.isfinite(apply_brainforge_inverse(evoked, fwd32, tiny_model).data)
        )
    # a flat channel is left out like a bad one, with a warning naming it
    flat = data.copy()
    flat[info.ch_names.index("Oz")] = 3e-6
    flat_evoked = mne.EvokedArray(flat, info)
    with pytest.warns(RuntimeWarning, match="flat EEG channel.*Oz"):
        stc = apply_brainforge_inverse(flat_evoked, fwd32, tiny_model)
    flat_evoked.info["bads"] = ["Oz"]
    _same(stc, apply_brainforge_inverse(flat_evoked, fwd32, tiny_model))
    # no EEG at all
    meg = mne.EvokedArray(
        np.zeros((3, 50)), mne.create_info(["M1", "M2", "M3"], 250.0, "mag")
    )
    with pytest.raises(ValueError, match="no EEG channels.*mag"):
        apply_brainforge_inverse(meg, fwd32, tiny_model)


@pytest.mark.parametrize("sfreq", [1000.0, 128.0])
def test_any_sampling_rate(tiny_model, fwd32, sfreq):
    """Estimates have the data's times; rates agree on band-limited data."""
    data = _eeg(int(4 * sfreq), sfreq=sfreq, seed=6)
    evoked = mne.EvokedArray(data, _info(fwd32, sfreq=sfreq), tmin=-0.5)
    stc = apply_brainforge_inverse(evoked, fwd32, tiny_model)
    assert stc.shape == (20484, data.shape[1])
    np.testing.assert_allclose(stc.times, evoked.times, atol=1e-12)
    assert np.all(np.isfinite(stc.data))
    if sfreq == 1000.0:  # the same signal sampled at 250 Hz: the same sources
        at_250 = mne.EvokedArray(data[:, ::4], _info(fwd32), tmin=-0.5)
        _similar(stc, apply_brainforge_inverse(at_250, fwd32, tiny_model), 0.95)
    # shorter than one window (the network's 1 s): zero-padded
    short = apply_brainforge_inverse(evoked.copy().crop(0, 0.2), fwd32, tiny_model)
    assert short.shape[1] == len(evoked.copy().crop(0, 0.2).times)
    assert np.all(np.isfinite(short.data)) and np.abs(short.data).max() > 0


def test_inputs_unmodified(tiny_model, fwd32, evoked):
    fwd_before = fwd32.copy()
    evoked_before = evoked.copy()
    raw = mne.io.RawArray(evoked.data, evoked.info, verbose=False)
    raw_before = raw.copy()
    apply_brainforge_inverse(evoked, fwd32, tiny_model, return_residual=True)
    apply_brainforge_inverse_raw(raw, fwd32, tiny_model, start=10)
    assert mne.utils.object_diff(evoked, evoked_before) == ""
    assert mne.utils.object_diff(raw, raw_before) == ""
    assert mne.utils.object_diff(fwd32, fwd_before) == ""


def test_fixed_gain_cached_per_forward(fwd32, monkeypatch):
    """The orientation conversion runs once per forward, again if its gain changed."""
    calls = []
    convert = mne.convert_forward_solution
    monkeypatch.setattr(
        mne,
        "convert_forward_solution",
        lambda *a, **k: calls.append(1) or convert(*a, **k),
    )
    fwd = fwd32.copy()
    gain, names = _core._fixed_gain(fwd)
    again, _ = _core._fixed_gain(fwd)
    assert again is gain and len(calls) == 1
    fixed = convert(fwd32, surf_ori=True, force_fixed=True, verbose=False)
    np.testing.assert_array_equal(gain, fixed["sol"]["data"][: len(names)])
    fwd["_orig_sol"] *= 2  # modified in place (the gain MNE converts from): again
    doubled, _ = _core._fixed_gain(fwd)
    assert len(calls) == 2
    np.testing.assert_allclose(doubled, 2 * gain)
    key = id(fwd)
    del fwd
    assert key not in _core._FIXED_GAINS  # freed with its forward


# ---------------------------------------------------------------------------- comparison


@pytest.fixture(scope="module")
def comparison(tiny_model, fwd32):
    data = np.concatenate(
        [_eeg(100, seed=7), np.ones((1, 100)) * 1e-4]
    )  # + an EOG channel
    evoked = mne.EvokedArray(data, _info(fwd32, extra=[("EOG1", "eog")]), tmin=-0.1)
    cov = mne.make_ad_hoc_cov(evoked.info, verbose=False)
    before = evoked.copy()
    stcs = compare_inverse_methods(evoked, fwd32, cov, model=tiny_model)
    assert mne.utils.object_diff(evoked, before) == ""
    return evoked, stcs


def test_compare_inverse_methods(tiny_model, fwd32, comparison):
    evoked, stcs = comparison
    assert list(stcs) == ["brainforge", "sparse-bayes", "sLORETA", "MxNE"]
    for name, stc in stcs.items():
        assert [len(v) for v in stc.vertices] == [10242, 10242], name
        np.testing.assert_allclose(stc.times, evoked.times, atol=1e-12)
        assert np.all(np.isfinite(stc.data)) and np.abs(stc.data).max() > 0
        assert np.any(stc.data < 0), name  # signed (pick_ori='normal')
    for name in ("brainforge", "sparse-bayes"):  # sharp: both sources at the top
        for true in SOURCES:
            peaks = _peaks(stcs[name], 10)
            assert min(_distance_mm(fwd32, true, p) for p in peaks) < 5, name
    _similar(
        stcs["brainforge"], inverse.apply_brainforge_inverse(evoked, fwd32, tiny_model)
    )
    cov = mne.make_ad_hoc_cov(evoked.info, verbose=False)
    mne_only = compare_inverse_methods(evoked, fwd32, cov, ["mne"], lambda2=1 / 9)
    assert list(mne_only) == ["MNE"]
    gamma_map = compare_inverse_methods(evoked, fwd32, cov, ["GAMMA-map"])
    assert list(gamma_map) == ["gamma-MAP"]
    with pytest.raises(ValueError, match="Unknown inverse method 'LORETA'"):
        compare_inverse_methods(evoked, fwd32, cov, ["LORETA"], model=tiny_model)
    with pytest.raises(ValueError, match="noise covariance"):
        compare_inverse_methods(evoked, fwd32, None, model=tiny_model)
    only_bf = compare_inverse_methods(
        evoked, fwd32, None, ["BrainForge"], model=tiny_model
    )
    assert list(only_bf) == ["brainforge"]


@pytest.mark.render
def test_plot_inverse_comparison(comparison, subjects_dir, tmp_path, needs_3d):
    import matplotlib.pyplot as plt

    _, stcs = comparison
    fname = tmp_path / "comparison.png"
    fig = plot_inverse_comparison(stcs, subjects_dir, hemi="split", fname=fname)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert [t.split("\n")[0] for t in titles] == list(stcs)
        image = plt.imread(fname)
    finally:
        plt.close(fig)
    assert fname.stat().st_size > 30_000
    # 2 x 2 panels of split hemispheres (800 x 300 pixels) and titles
    assert image.shape[:2] == (2 * (300 + 50), 2 * 800)
    painted = (
        np.ptp(image[..., :3], axis=-1) > 0.25
    )  # coloured cortex, not white or grey
    assert painted.mean() > 0.004  # sparse maps (BrainForge, MxNE) are dots
