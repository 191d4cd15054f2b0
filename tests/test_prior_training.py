"""Training the network for the prior on the batched engine."""

import numpy as np
import pytest
import torch

from mne_brainforge.head import parcellate_source_space
from mne_brainforge.nn.prior import region_energy
from mne_brainforge.training.prior import prior_loss, region_targets, train_prior

NET = dict(d_model=16, cnn_channels=(4,), n_heads=2, n_layers=1, dim_feedforward=32)


@pytest.fixture(scope="module")
def generator(small_engine):
    return small_engine()


@pytest.fixture(scope="module")
def parcellation(fwd32):
    return parcellate_source_space(fwd32["src"], 20, seed=0, verbose=False)


def test_targets_are_the_true_energy_shares(generator, parcellation):
    batch = generator.draw(16, 0)
    moments = generator.source_map(batch)
    target = region_targets(moments, parcellation)
    torch.testing.assert_close(target.sum(1), torch.ones(16))
    for b in range(16):
        if moments[b].any():  # all the target's mass where the sources are
            regions = np.unique(parcellation.labels[moments[b].numpy() > 0])
            assert target[b, regions].sum() == pytest.approx(1.0, abs=1e-5)
        else:  # nothing: the flat prior
            torch.testing.assert_close(target[b], torch.full((20,), 1 / 20))
    # the loss is smallest when the network's shares equal the target
    right = target.sqrt()[..., None].expand(-1, -1, 5)
    wrong = target.flip(0).sqrt()[..., None].expand(-1, -1, 5)
    assert prior_loss(right, target) < prior_loss(wrong, target)


def test_train_resume_and_model(generator, parcellation, tmp_path):
    ckpt = tmp_path / "prior.pt"
    kwargs = dict(parcellation=parcellation, batch_size=8, net_kwargs=NET, lr=3e-3)
    model = train_prior(generator, steps=30, checkpoint=ckpt, verbose=False, **kwargs)
    history = model.config["training"]
    assert history["steps_done"] == 30 and history["windows_seen"] == 240
    assert ckpt.is_file()
    # resumed from the checkpoint: the same weights as one run of the same length
    again = train_prior(generator, steps=30, checkpoint=ckpt, verbose=False, **kwargs)
    for a, b in zip(model.net.parameters(), again.net.parameters()):
        torch.testing.assert_close(a, b)
    # the model applies like any BrainForge model
    batch = generator.draw(2, 123)
    pos = batch["ch_pos"][0].numpy()
    regions = model.predict_regions(batch["eeg"][:, : len(pos)].numpy(), pos)
    assert region_energy(regions).shape == (2, 20)
    with pytest.raises(ValueError, match="steps"):
        train_prior(generator, steps=0, **kwargs)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(generator, parcellation):
    """2 gloo ranks of 4 windows = 1 process accumulating 2 shards of 4 (same windows)."""
    net = dict(NET, dropout=0.0)  # dropout masks differ between processes
    kwargs = dict(parcellation=parcellation, batch_size=4, net_kwargs=net, lr=3e-3)
    ddp = train_prior(generator, steps=4, nproc=2, verbose=False, **kwargs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the 2 ranks on 2 cores: same float rounding
    try:
        one = train_prior(generator, steps=4, accumulate=2, verbose=False, **kwargs)
    finally:
        torch.set_num_threads(threads)
    assert ddp.config["training"]["windows_seen"] == 32
    assert one.config["training"]["windows_seen"] == 32
    for a, b in zip(ddp.net.parameters(), one.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # one shard per step sees other windows: the weights differ
    half = train_prior(generator, steps=4, verbose=False, **kwargs)
    gap = max(
        (a - b).abs().max() for a, b in zip(one.net.parameters(), half.net.parameters())
    )
    assert gap > 1e-3
    with pytest.raises(ValueError, match="nproc"):
        train_prior(generator, steps=4, nproc=0, **kwargs)


def test_fine_tuning_leaves_the_given_model(generator, parcellation):
    kwargs = dict(parcellation=parcellation, batch_size=4, net_kwargs=NET)
    base = train_prior(generator, steps=1, verbose=False, **kwargs)
    before = [p.detach().clone() for p in base.net.parameters()]
    tuned = train_prior(generator, init=base, steps=3, verbose=False)
    for a, b in zip(before, base.net.parameters()):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(before, tuned.net.parameters()))


def test_learning_rate_schedule_for_any_number_of_steps():
    """OneCycleLR divided by zero at 20 steps (warm-up of exactly one step)."""
    from mne_brainforge.training.prior import _warmup_fraction

    for steps in (1, 2, 3, 4, 20, 40, 57):
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=1e-3)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=1e-3, total_steps=steps, pct_start=_warmup_fraction(steps)
        )
        rates = []
        for _ in range(steps - 1):
            optimizer.step()
            scheduler.step()
            rates.append(scheduler.get_last_lr()[0])
        assert all(np.isfinite(rates)) and max(rates, default=1e-3) <= 1e-3 + 1e-12


_TORCHRUN_SCRIPT = """
import pickle, sys
import torch
from mne_brainforge.training import train_prior
from mne_brainforge.training.prior import is_main_process
with open(sys.argv[1], "rb") as fid:
    generator, kwargs = pickle.load(fid)
model = train_prior(generator, verbose=False, **kwargs)
if is_main_process():
    model.save(sys.argv[2])
"""


@pytest.mark.slow
def test_torchrun_ranks_match_one_process(generator, parcellation, tmp_path):
    """Two ranks started by torchrun (env://, gloo) = one process accumulating 2 shards."""
    import pickle
    import subprocess
    import sys

    from mne_brainforge.nn import BrainForgeModel

    net = dict(NET, dropout=0.0)
    kwargs = dict(parcellation=parcellation, batch_size=4, net_kwargs=net, lr=3e-3)
    with open(tmp_path / "setup.pkl", "wb") as fid:
        pickle.dump((generator, dict(kwargs, steps=4)), fid)
    (tmp_path / "train.py").write_text(_TORCHRUN_SCRIPT)
    out = tmp_path / "model.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(tmp_path / "train.py")]
    command += [str(tmp_path / "setup.pkl"), str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = BrainForgeModel.load(out)
    assert ddp.config["training"]["nproc"] == 2
    assert ddp.config["training"]["windows_seen"] == 32
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank (torchrun sets OMP_NUM_THREADS=1)
    try:
        one = train_prior(generator, steps=4, accumulate=2, verbose=False, **kwargs)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(ddp.net.parameters(), one.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_distributed_backend_and_torchrun_checks(generator, parcellation, monkeypatch):
    from mne_brainforge.training.prior import distributed_backend, is_main_process

    assert distributed_backend("cuda:1") == "nccl"
    assert distributed_backend(torch.device("cpu")) == "gloo"
    assert is_main_process()
    # as torchrun sets it: this process is one rank, nproc would spawn more
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    with pytest.raises(ValueError, match="torchrun"):
        train_prior(generator, parcellation=parcellation, steps=1, nproc=2)
