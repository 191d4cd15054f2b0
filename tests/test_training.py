"""Training: the network learns, checkpoints resume, models round-trip."""

import mne
import numpy as np
import pytest
import torch

from mne_brainforge import metrics
from mne_brainforge.head.parcellation import source_graph
from mne_brainforge.nn import BrainForgeModel, BrainForgeNet
from mne_brainforge.nn.topomap import masked_topomap_matrix
from mne_brainforge.simulation.dataset import EEGSimulator
from mne_brainforge.training import BrainForgeLoss, train_model


@pytest.fixture(scope="module")
def fixed32(fwd32):
    return mne.convert_forward_solution(
        fwd32, surf_ori=True, force_fixed=True, verbose=False
    )


def _batch(sim, n, seed):
    draws = [sim.draw(np.random.default_rng([seed, i])) for i in range(n)]
    eeg = np.stack([d["eeg"] for d in draws])
    target = np.stack([d["target"] for d in draws])
    eeg_scale = np.abs(eeg).max((1, 2))
    target_scale = np.abs(target).max((1, 2))
    topo = np.stack([masked_topomap_matrix(sim.ch_pos, d["mask"], 16) for d in draws])
    return dict(
        eeg=torch.tensor(eeg / eeg_scale[:, None, None], dtype=torch.float32),
        target=torch.tensor(target / target_scale[:, None, None], dtype=torch.float32),
        mask=torch.tensor(np.stack([d["mask"] for d in draws])),
        eeg_scale=torch.tensor(eeg_scale),
        target_scale=torch.tensor(target_scale),
        topo=torch.tensor(topo, dtype=torch.float32),
    )


def test_tiny_model_overfits_tiny_dataset(fixed32, spike_library):
    sim = EEGSimulator(
        fixed32, spike_library, 60, sfreq=100.0, duration=0.4, verbose=False
    )
    batch = _batch(sim, 4, 0)
    torch.manual_seed(0)
    net = BrainForgeNet(60, size=16, d_model=64, dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = BrainForgeLoss()
    losses = []
    for _ in range(300):
        loss, _ = loss_fn(net(batch["eeg"], batch["topo"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100


def test_physics_terms(fixed32, spike_library):
    sim = EEGSimulator(
        fixed32,
        spike_library,
        60,
        sfreq=100.0,
        duration=0.4,
        snr_range=None,
        gain_sigma=0.0,
        verbose=False,
    )
    batch = _batch(sim, 2, 1)
    region_gain = sim.gain @ sim.parcellation.region_matrix().toarray()
    loss_fn = BrainForgeLoss(
        region_gain,
        sim.parcellation.adjacency,
        forward_weight=1.0,
        laplacian_weight=1.0,
    )
    _, exact = loss_fn(batch["target"], batch)
    _, wrong = loss_fn(torch.roll(batch["target"], 7, dims=1), batch)
    assert exact["relative_mse"] == 0.0
    # the true regions explain the data far better than shuffled ones
    assert exact["forward"] < 0.5 and wrong["forward"] > 2 * exact["forward"]
    assert exact["laplacian"] > 0


def test_resume_and_round_trip(fwd32, spike_library, tmp_path):
    kwargs = dict(
        library=spike_library,
        n_regions=60,
        steps=6,
        batch_size=4,
        val_every=3,
        val_samples=2,
        topomap_size=16,
        net_kwargs=dict(d_model=32),
        checkpoint_dir=tmp_path / "ckpt",
        num_workers=0,
        verbose=False,
    )
    model = train_model(fwd32, **kwargs)
    assert model.config["training"]["steps_done"] == 6
    assert [h["step"] for h in model.config["training"]["history"]] == [3, 6]
    resumed = train_model(fwd32, **dict(kwargs, steps=9))
    history = resumed.config["training"]["history"]
    assert [h["step"] for h in history] == [3, 6, 9]  # continued, not restarted
    assert (
        resumed.config["training"]["wall_time_s"]
        > model.config["training"]["wall_time_s"]
    )
    with pytest.raises(ValueError, match="other settings"):
        train_model(fwd32, **dict(kwargs, lr=0.1))
    other = type(spike_library)(seed=1)  # other waveforms: not the same training data
    with pytest.raises(ValueError, match="other settings"):
        train_model(fwd32, **dict(kwargs, library=other))

    resumed.save(tmp_path / "model.pt")
    loaded = BrainForgeModel.load(tmp_path / "model.pt")
    pos = np.array([ch["loc"][:3] for ch in fwd32["info"]["chs"]])
    eeg = np.random.default_rng(0).standard_normal((2, 32, resumed.n_times))
    np.testing.assert_array_equal(
        loaded.predict_regions(eeg, pos), resumed.predict_regions(eeg, pos)
    )
    assert loaded.config == resumed.config
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable mne-brainforge model"):
        BrainForgeModel.load(tmp_path / "bad.pt")


@pytest.mark.slow
def test_short_training_localizes_a_strong_source(fwd32, spike_library):
    model = train_model(
        fwd32,
        library=spike_library,
        n_regions=200,
        steps=400,
        batch_size=16,
        val_every=400,
        val_samples=8,
        topomap_size=16,
        simulator_kwargs=dict(max_sources=1, snr_range=(15, 30)),
        num_workers=1,
        verbose=False,
    )
    fixed = mne.convert_forward_solution(
        fwd32, surf_ori=True, force_fixed=True, verbose=False
    )
    sim = EEGSimulator(
        fixed,
        spike_library,
        model.parcellation,
        sfreq=100.0,
        max_sources=1,
        n_channels_range=(32, 32),
        verbose=False,
    )
    src = fwd32["src"]
    graph = source_graph(src, verbose=False)
    pos = np.array([ch["loc"][:3] for ch in fwd32["info"]["chs"]])
    errors = []
    for i in range(20):
        draw = sim.draw(np.random.default_rng([123, i]), snr_db=20.0)
        regions = model.predict_regions(draw["eeg"][None], pos)[0]
        vertices = [s["vertno"] for s in src]
        est = mne.SourceEstimate(model.to_sources(regions), vertices, 0, 0.01)
        truth = metrics.GroundTruth(
            mne.SourceEstimate(draw["source_data"], vertices, 0, 0.01),
            [draw["patches"][0].sources],
            [draw["patches"][0].centre_index],
        )
        errors.append(metrics.localization_error(est, truth, src, graph))
    assert np.median(errors) < 30  # mm, after ~2 minutes of CPU training


def test_fine_tune_from_a_trained_model(fwd32, spike_library):
    """init=model starts from its weights, parcellation and settings."""
    kwargs = dict(
        library=spike_library,
        steps=2,
        batch_size=2,
        val_every=2,
        val_samples=2,
        num_workers=0,
        verbose=False,
    )
    base = train_model(fwd32, n_regions=40, net_kwargs=dict(d_model=16), **kwargs)
    tuned = train_model(fwd32, init=base, n_regions=999, lr=1e-12, **kwargs)
    assert tuned.parcellation is base.parcellation
    assert tuned.config["net"] == base.config["net"]
    for a, b in zip(base.net.parameters(), tuned.net.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)  # lr ~ 0
    with pytest.raises(TypeError, match="init must be a BrainForgeModel"):
        train_model(fwd32, init="model.pt", **kwargs)
