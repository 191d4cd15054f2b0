"""Sensor-space synthesis and the on-the-fly dataset."""

import mne
import numpy as np
import pytest
import torch
from mne.io.constants import FIFF

from mne_brainforge.head import fixed_orientation_gain
from mne_brainforge.simulation.dataset import EEGSimulator, SyntheticEEGDataset
from mne_brainforge.simulation.synthesis import (
    NOISE_KINDS,
    add_noise_at_snr,
    average_reference,
    check_snr_range,
    measured_snr,
)


@pytest.fixture(scope="module")
def fixed_fwd(fwd64):
    return mne.convert_forward_solution(
        fwd64, surf_ori=True, force_fixed=True, verbose="error"
    )


@pytest.fixture(scope="module")
def simulator(fixed_fwd, spike_library):
    return EEGSimulator(
        fixed_fwd, spike_library, 200, sfreq=250.0, duration=1.0, verbose="error"
    )


def test_noise_free_data_is_exactly_gain_times_sources(fixed_fwd, spike_library):
    sim = EEGSimulator(
        fixed_fwd,
        spike_library,
        200,
        gain_sigma=0.0,
        n_channels_range=(64, 64),
        snr_range=None,
        verbose="error",
    )
    draw = sim.draw(np.random.default_rng(1))
    assert draw["snr_db"] is None and draw["mask"].all()
    gain = fixed_fwd["sol"]["data"]
    np.testing.assert_allclose(
        draw["eeg"],
        average_reference(gain @ draw["source_data"]),
        rtol=1e-10,
        atol=1e-20,
    )
    # the sources are where the patches are, and the region targets follow them
    active = np.flatnonzero(np.abs(draw["source_data"]).max(1))
    patch_sources = np.unique(np.concatenate([p.sources for p in draw["patches"]]))
    np.testing.assert_array_equal(active, patch_sources)
    active_regions = np.flatnonzero(np.abs(draw["target"]).max(1))
    patch_regions = np.unique(np.concatenate([p.regions for p in draw["patches"]]))
    np.testing.assert_array_equal(active_regions, patch_regions)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_snr_matches_request(simulator, kind):
    for seed, snr in enumerate((0.0, 7.5, 20.0)):
        draw = simulator.draw(np.random.default_rng(seed), snr_db=snr, noise_kind=kind)
        assert draw["noise_kind"] == kind and draw["snr_db"] == snr
        assert measured_snr(draw["signal"], draw["eeg"], draw["mask"]) == pytest.approx(
            snr, abs=0.5
        )


def test_add_noise_at_snr_exact():
    rng = np.random.default_rng(0)
    signal, noise = rng.standard_normal((2, 32, 100))
    mask = np.ones(32, bool)
    mask[:5] = False
    for snr in (-5.0, 0.0, 13.0, 30.0):
        noisy = add_noise_at_snr(signal, noise, snr, mask)
        assert measured_snr(signal, noisy, mask) == pytest.approx(snr, abs=1e-9)
        assert np.all(noisy[~mask] == 0)
        np.testing.assert_allclose(noisy[mask].mean(0), 0, atol=1e-12)


def test_channel_subsets_and_reference(simulator):
    counts = []
    for seed in range(20):
        draw = simulator.draw(np.random.default_rng(seed))
        counts.append(draw["mask"].sum())
        assert np.all(draw["eeg"][~draw["mask"]] == 0)
        np.testing.assert_allclose(draw["eeg"][draw["mask"]].mean(0), 0, atol=1e-15)
    assert min(counts) >= 16 and max(counts) <= 64 and len(set(counts)) > 5


def test_spread_channel_subsets_cover_the_head(simulator):
    """Half the subsets are spread like a real small cap, half are random."""
    rng = np.random.default_rng(0)
    pos = simulator.ch_pos
    gaps = []
    for _ in range(200):
        kept = pos[simulator._channel_subset(16, rng)]
        assert len(kept) == 16
        dist = np.linalg.norm(kept[:, None] - kept[None], axis=-1) + np.eye(16)
        gaps.append(dist.min())  # closest pair: large when the subset is spread
    gaps = np.sort(gaps)
    # random subsets of 64 channels nearly always hold two neighbours (< 3 cm);
    # spread ones never do
    assert np.mean(gaps < 0.03) == pytest.approx(0.5, abs=0.12)
    assert gaps[-60:].min() > 0.04


def test_dataset_reproducible_and_worker_safe(simulator):
    data = SyntheticEEGDataset(simulator, n_samples=8, seed=5)
    first = [item["eeg"] for item in data]
    again = [
        item["eeg"] for item in SyntheticEEGDataset(simulator, n_samples=8, seed=5)
    ]
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    other = SyntheticEEGDataset(simulator, n_samples=8, seed=6).sample(0)["eeg"]
    assert not torch.allclose(first[0], other)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    items = list(loader)
    indices = sorted(int(item["index"]) for item in items)
    assert indices == list(range(8))  # every sample once: none duplicated, none lost
    for item in items:
        torch.testing.assert_close(item["eeg"], first[int(item["index"])])
    item = items[0]
    assert item["eeg"].shape == (64, 250) and item["target"].shape == (200, 250)
    assert float(item["eeg"].abs().max()) == pytest.approx(1.0)
    resumed = SyntheticEEGDataset(simulator, n_samples=8, seed=5, start=5)
    assert len(resumed) == 3 and [int(item["index"]) for item in resumed] == [5, 6, 7]
    data.set_epoch(1)
    assert not torch.allclose(data.sample(0)["eeg"], first[0])


def test_bad_forwards_and_arguments(fwd64, fixed_fwd, info64, spike_library):
    with pytest.raises(
        ValueError, match="free source orientation.*convert_forward_solution"
    ):
        fixed_orientation_gain(fwd64)
    meg_only = fixed_fwd.copy()
    with meg_only["info"]._unlock():
        for ch in meg_only["info"]["chs"]:
            ch.update(
                kind=FIFF.FIFFV_MEG_CH,
                unit=FIFF.FIFF_UNIT_T,
                coil_type=FIFF.FIFFV_COIL_VV_MAG_T3,
            )
    with pytest.raises(ValueError, match="no EEG channels"):
        fixed_orientation_gain(meg_only)
    vol = mne.setup_volume_source_space(
        sphere=(0, 0, 0.04, 0.08), pos=30.0, verbose="error"
    )
    sphere = mne.make_sphere_model((0, 0, 0.04), 0.09, verbose="error")
    fwd_vol = mne.make_forward_solution(info64, None, vol, sphere, verbose="error")
    with pytest.raises(ValueError, match="only surface source spaces"):
        fixed_orientation_gain(fwd_vol)
    with pytest.raises(ValueError, match="low <= high"):
        check_snr_range((30, 0))
    with pytest.raises(ValueError, match="low <= high"):
        EEGSimulator(fixed_fwd, spike_library, 200, snr_range=(20, 5), verbose="error")
    with pytest.raises(ValueError, match="noise_kinds"):
        EEGSimulator(
            fixed_fwd, spike_library, 200, noise_kinds=("brown",), verbose="error"
        )
