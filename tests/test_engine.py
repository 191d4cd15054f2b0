"""The batched simulation engine: physics, SNR, distributions, seeds, bad input."""

import copy
import hashlib

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.sparse.csgraph import dijkstra

from mne_brainforge.head import cortex_normal, source_graph
from mne_brainforge.head.family import HeadModelFamily, geodesic_neighbourhoods
from mne_brainforge.simulation.engine import (
    SOURCE_KINDS,
    BatchedEEGGenerator,
    seed_for,
)
from mne_brainforge.simulation.synthesis import measured_snr
from mne_brainforge.simulation.waveforms import WAVEFORM_FAMILIES, make_waveform_bank


@pytest.fixture(scope="module")
def family(fwd64):
    """Two head models on the 64-channel montage: the template and a scaled copy."""
    other = copy.deepcopy(cortex_normal(fwd64))
    other["sol"]["data"] = other["sol"]["data"] * 1.5
    return HeadModelFamily([fwd64, other], [{"name": "template"}, {"name": "x1.5"}])


@pytest.fixture(scope="module")
def bank(spike_library, regime_waveforms):
    return make_waveform_bank(
        spike_library,
        sfreq=100.0,
        n_times=100,
        n_per_family=50,
        regimes=regime_waveforms,
    )


@pytest.fixture(scope="module")
def generator(family, bank):
    sets = [family.channel_set("biosemi64"), family.channel_set("biosemi32")]
    return BatchedEEGGenerator(family, bank, channel_sets=sets)


def test_waveform_bank(bank):
    assert bank.families == WAVEFORM_FAMILIES
    assert bank.waveforms.shape[1] == 200
    np.testing.assert_allclose(bank.waveforms.abs().amax(1), 1.0, rtol=1e-6)
    spikes = bank.waveforms[bank.family == 0]
    assert torch.all(spikes.abs().argmax(1) == 100)  # transients centred
    index = torch.tensor([0, 0]), torch.tensor([0, 100])
    windows = bank.windows(*index)
    assert windows.shape == (2, 100)
    assert windows[1].abs().argmax() == 0 and windows[0].abs().argmax() == 99


def _dominant_hz(signals, sfreq):
    spectrum = np.abs(np.fft.rfft(signals - signals.mean(1, keepdims=True), axis=1))
    return np.fft.rfftfreq(signals.shape[1], 1 / sfreq)[spectrum.argmax(1)]


def test_tvb_regimes(regime_waveforms):
    """TVB's rhythmic regime discharges at 2.5-4 Hz, its alpha regime at 10-11 Hz."""
    rhythmic, alpha = regime_waveforms["rhythmic"], regime_waveforms["alpha"]
    assert rhythmic.shape == (6 * 76, 1250) and alpha.shape == (4 * 76, 1250)
    np.testing.assert_array_less(np.ptp(rhythmic, 1), 30)  # mV, not diverged
    assert np.all(np.ptp(rhythmic, 1) > 5)  # every region discharges
    hz = _dominant_hz(rhythmic, 500.0)
    assert np.mean((hz >= 2.0) & (hz <= 4.5)) > 0.9, np.percentile(hz, [5, 50, 95])
    hz = _dominant_hz(alpha, 500.0)
    assert np.mean((hz >= 8.5) & (hz <= 12)) > 0.9, np.percentile(hz, [5, 50, 95])


def test_regime_subset_gives_the_same_waveforms(regime_waveforms):
    from mne_brainforge.simulation import simulate_regimes

    alpha = simulate_regimes(["alpha"], duration=3.5, sfreq=500.0)["alpha"]
    np.testing.assert_array_equal(alpha, regime_waveforms["alpha"])


def test_bank_needs_the_regimes(spike_library, regime_waveforms):
    with pytest.raises(ValueError, match="lacks the waveforms of .'alpha'"):
        make_waveform_bank(
            spike_library, regimes={"rhythmic": regime_waveforms["rhythmic"]}
        )


def test_noise_free_eeg_is_gain_times_sources(family, bank):
    """Without jitter and gain error, eeg = R L_k J for the drawn head model."""
    exact = BatchedEEGGenerator(
        family,
        bank,
        channel_sets=[family.channel_set("biosemi64")],
        jitter_sd=0.0,
        gain_sigma=0.0,
    )
    batch = exact.draw(16, seed=1, snr_db=None)
    assert torch.all(torch.isnan(batch["snr_db"]))
    checked = 0
    for b in range(16):
        J = exact.source_activity(batch, b).double().numpy()
        k = int(batch["head_model"][b])
        mask = batch["mask"][b].numpy()
        rows = batch["channels"][b].numpy()
        gain = family.gains[k][rows].astype(np.float64)
        clean = gain @ J
        r = batch["reference"][b].double().numpy()
        expected = (clean - r @ clean) * mask[:, None]
        eeg = batch["eeg"][b].double().numpy()
        scale = np.abs(expected).max()
        if batch["n_sources"][b] == 0:
            assert np.all(eeg == 0)
            continue
        np.testing.assert_allclose(eeg, expected, atol=1e-5 * scale)
        checked += 1
    assert checked >= 10
    # the second head model has 1.5 times the gain of the first
    assert set(batch["head_model"].tolist()) == {0, 1}


def test_snr_follows_the_documented_definition(generator):
    batch = generator.draw(64, seed=2, signal=True)
    has = batch["n_sources"] > 0
    assert has.sum() > 50
    for b in np.flatnonzero(has.numpy()):
        mask = batch["mask"][b].numpy()
        snr = measured_snr(
            batch["signal"][b].double().numpy()[mask],
            batch["eeg"][b].double().numpy()[mask],
        )
        assert abs(snr - float(batch["snr_db"][b])) < 0.5
    assert torch.all(torch.isnan(batch["snr_db"][~has]))


def test_drawn_distributions(family, bank):
    generator = BatchedEEGGenerator(
        family,
        bank,
        channel_sets=[family.channel_set("biosemi32")],
        n_sources_weights=[0.1, 0.3, 0.2, 0.2, 0.1, 0.1],
        snr_range=(-5.0, 20.0),
        extent_range=(0.01, 0.025),
    )
    batches = [generator.draw(600, seed=s) for s in range(3)]
    n_sources = torch.cat([b["n_sources"] for b in batches]).numpy()
    counts = np.bincount(n_sources, minlength=6)
    expected = np.array([0.1, 0.3, 0.2, 0.2, 0.1, 0.1]) * len(n_sources)
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    snr = torch.cat([b["snr_db"] for b in batches]).numpy()
    assert np.all(np.isnan(snr[n_sources == 0]))
    snr = snr[n_sources > 0]
    assert stats.kstest(snr, stats.uniform(-5, 25).cdf).pvalue > 1e-3
    kind = torch.cat([b["source_kind"] for b in batches]).numpy()
    extent = torch.cat([b["extent"] for b in batches]).numpy()
    extended = kind > 0
    assert stats.kstest(extent[extended], stats.uniform(0.01, 0.015).cdf).pvalue > 1e-3
    assert np.all(extent[kind == SOURCE_KINDS.index("dipole")] == 0)
    assert np.all(np.isnan(extent[kind == -1]))
    # the slots in use are the first n_sources
    assert np.array_equal((kind >= 0).sum(1), n_sources)


def test_patches_are_geodesic(generator, family):
    batch = generator.draw(32, seed=4, snr_db=None)
    graph = source_graph(family.src, verbose=False)
    kind, weight = batch["source_kind"], batch["source_weight"]
    b, s = np.argwhere((kind == SOURCE_KINDS.index("disc")).numpy())[0]
    centre = int(batch["centre"][b, s])
    verts = batch["source_index"][b, s][weight[b, s] > 0].numpy()
    dist = dijkstra(graph, indices=centre)
    assert dist[verts].max() <= float(batch["extent"][b, s]) + 1e-6
    # every vertex within the radius is in the disc
    assert set(np.flatnonzero(dist <= 0.99 * float(batch["extent"][b, s]))) <= set(
        verts
    )
    index, distance = geodesic_neighbourhoods(family.src, 0.03)
    assert np.all(index[:, 0] == np.arange(len(index)))
    assert np.all(np.diff(np.where(np.isfinite(distance), distance, 1.0), axis=1) >= 0)
    # dipoles are single vertices
    b, s = np.argwhere((kind == 0).numpy())[0]
    assert (weight[b, s] > 0).sum() == 1


def test_same_seed_same_batch_and_disjoint_ranks(generator):
    one, two = generator.draw(32, seed=7), generator.draw(32, seed=7)
    assert one.keys() == two.keys()
    for key in one:
        assert torch.equal(one[key].nan_to_num(-9), two[key].nan_to_num(-9)), key
    assert not torch.equal(one["eeg"], generator.draw(32, seed=8)["eeg"])
    seen = {}
    for rank in range(2):
        for worker in range(2):
            for step in range(3):
                batch = generator.draw(16, seed_for(0, rank, worker, step))
                for window in batch["eeg"]:
                    digest = hashlib.sha256(window.numpy().tobytes()).hexdigest()
                    assert digest not in seen, (rank, worker, step, seen.get(digest))
                    seen[digest] = (rank, worker, step)
    assert seed_for(0, 1, 0, 0) != seed_for(0, 0, 1, 0) != seed_for(1, 0, 0, 0)


def test_references_and_dropouts(generator):
    batch = generator.draw(200, seed=9)
    eeg, mask, ref = batch["eeg"], batch["mask"], batch["reference"]
    assert torch.all(eeg[~mask] == 0)
    assert torch.allclose(ref.sum(1), torch.ones(200))
    assert torch.all(ref[~mask] == 0)
    # the reference signal r^T x of the referenced data is zero
    assert torch.allclose(
        torch.einsum("bc,bct->bt", ref, eeg),
        torch.zeros(1),
        atol=1e-6 * eeg.abs().max(),
    )
    assert set(batch["reference_kind"].tolist()) == {0, 1, 2}
    n_kept = mask.sum(1)
    assert n_kept.min() >= 8 and n_kept.max() <= 64
    assert (n_kept < batch["channels"].ge(0).sum(1)).any()  # some dropouts


def test_interpolated_cap_is_close_to_its_forward(fwd32, fwd64):
    """BioSemi 64 off a 32-channel montage: first order beats the nearest electrode."""
    from mne_brainforge.head import fixed_orientation_gain

    coarse = HeadModelFamily([fwd32])
    truth, names = fixed_orientation_gain(cortex_normal(fwd64))
    cap = coarse.channel_set("biosemi64", max_distance=0.05)
    assert list(cap.ch_names) == names
    index, weight = coarse.interpolation(cap.base, cap.offset)
    interpolated = np.einsum("cn,cns->cs", weight, coarse.gains[0][index])
    nearest = coarse.gains[0][cap.base]
    moved = np.linalg.norm(cap.offset, axis=1) > 1e-3
    assert moved.sum() > 20

    def error(gain):
        return np.linalg.norm(gain[moved] - truth[moved]) / np.linalg.norm(truth[moved])

    assert error(interpolated) < 0.8 * error(nearest)


def test_bad_input(fwd64, fwd32, family, bank):
    free = HeadModelFamily([fwd64])  # free orientation: converted
    np.testing.assert_allclose(free.gains[0], family.gains[0])
    with pytest.raises(ValueError, match="other EEG channels"):
        HeadModelFamily([fwd64, fwd32])
    moved = copy.deepcopy(fwd64)
    moved["src"][0]["rr"] = moved["src"][0]["rr"] + 0.01
    with pytest.raises(ValueError, match="another source space"):
        HeadModelFamily([fwd64, moved])
    with pytest.raises(ValueError, match="empty"):
        family.channel_set("biosemi64", picks=[])
    with pytest.raises(ValueError, match="empty"):
        family.channel_set("GSN-HydroCel-256", max_distance=0.0)
    with pytest.raises(TypeError, match="list"):
        HeadModelFamily(fwd64)
    with pytest.raises(ValueError, match="noise_kinds"):
        BatchedEEGGenerator(family, bank, noise_kinds=("purple",))
    with pytest.raises(ValueError, match="n_sources"):
        BatchedEEGGenerator(family, bank, n_sources_weights=[1.0, 1.0])


def test_short_background_is_mirrored(spike_library):
    """Background segments of one window (the default TVB library's) still fill 2."""
    from types import SimpleNamespace

    short = SimpleNamespace(
        spikes=spike_library.spikes,
        background=spike_library.background[:, :500],  # 1 s at 500 Hz
        sfreq=spike_library.sfreq,
    )
    bank = make_waveform_bank(
        short, sfreq=100.0, n_times=100, n_per_family=20, families=["background"]
    )
    background = bank.waveforms
    assert background.shape == (20, 200)
    assert torch.all(background.abs().amax(1) == 1)
    with pytest.raises(ValueError, match="shorter than a window"):
        make_waveform_bank(
            SimpleNamespace(**{**vars(short), "background": short.background[:, :200]}),
            sfreq=100.0,
            n_times=100,
            families=["background"],
        )
