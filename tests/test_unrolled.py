"""The differentiable (unrolled) sparse Bayesian solve and training through it."""

import numpy as np
import pytest
import torch

from mne_brainforge.head import parcellate_source_space
from mne_brainforge.inverse.sparse_bayes import sparse_bayes_solve
from mne_brainforge.nn.prior import diffusion_operator, torch_operator
from mne_brainforge.nn.solve import unrolled_sparse_bayes
from mne_brainforge.training.prior import train_prior
from mne_brainforge.training.through_solve import (
    solve_loss,
    solve_windows,
    true_activity,
)

NET = dict(d_model=16, cnn_channels=(4,), n_heads=2, n_layers=1, dim_feedforward=32)


def _problem(seed=0, n_ch=16, n_src=300, n_times=50, sources=(5, 100)):
    """Average-referenced random gain and data of two sources + noise."""
    rng = np.random.default_rng(seed)
    proj = np.eye(n_ch) - 1 / n_ch
    gain = proj @ rng.standard_normal((n_ch, n_src))
    wave = rng.standard_normal((len(sources), n_times))
    data = gain[:, list(sources)] @ wave + 0.3 * proj @ rng.standard_normal(
        (n_ch, n_times)
    )
    return gain, data, proj


def test_unrolled_solve_equals_the_numpy_solve():
    windows = [_problem(seed) for seed in (0, 1)]
    gain = torch.tensor(np.stack([w[0] for w in windows]))
    data = torch.tensor(np.stack([w[1] for w in windows]))
    prior = torch.tensor(np.random.default_rng(2).uniform(0.2, 2, (2, 300)))
    x, gamma, noise = unrolled_sparse_bayes(
        gain, data, prior, n_iter=6, rank=torch.tensor([15, 15])
    )
    for b, (g, d, proj) in enumerate(windows):
        # numpy on the rank-15 subspace of the average reference (as the estimator)
        basis = np.linalg.svd(proj)[0][:, :15]
        ref = sparse_bayes_solve(
            basis.T @ g, basis.T @ d, gamma0=prior[b].numpy(), n_iter=6, tol=0, prune=0
        )
        np.testing.assert_allclose(x[b].numpy(), ref.x, atol=1e-10 * abs(ref.x).max())
        np.testing.assert_allclose(gamma[b].numpy(), ref.gamma, rtol=1e-8)
        assert noise[b].item() == pytest.approx(ref.noise, rel=1e-8)
    with pytest.raises(ValueError, match="gamma0"):
        unrolled_sparse_bayes(gain, data, prior[:, :10])


def test_gradient_tells_the_prior_where_the_sources_are():
    gain, data, _ = _problem(0, sources=(5, 100))
    truth = np.zeros((300, 50))
    log_prior = torch.zeros(1, 300, dtype=torch.float64, requires_grad=True)
    x, _, _ = unrolled_sparse_bayes(
        torch.tensor(gain)[None],
        torch.tensor(data)[None],
        log_prior.exp(),
        n_iter=3,
        rank=torch.tensor([15]),
    )
    # loss: the share of estimated energy outside the two true sources
    energy = x[0].square().sum(1)
    truth[[5, 100]] = 1
    outside = energy[torch.tensor(truth[:, 0] == 0)].sum() / energy.sum()
    outside.backward()
    grad = log_prior.grad[0].numpy()
    # more prior on the true sources lowers the loss; on any other, raises it
    assert grad[5] < 0 and grad[100] < 0
    assert np.median(grad[np.flatnonzero(truth[:, 0] == 0)]) > 0


@pytest.fixture(scope="module")
def generator(small_engine):
    """One dipole per window at 20 dB."""
    return small_engine(
        n_sources_weights=[0, 1, 0, 0, 0, 0],
        source_kinds={"dipole": 1.0},
        snr_range=(20, 20),
    )


@pytest.fixture(scope="module")
def parcellation(fwd32):
    return parcellate_source_space(fwd32["src"], 20, seed=0, verbose=False)


def test_solve_loss_rewards_the_true_sources(generator, parcellation):
    batch = generator.draw(4, 0)
    truth = true_activity(generator, batch)
    operator = torch_operator(
        diffusion_operator(parcellation.graph), dtype=torch.float32
    )
    best = solve_loss(3.0 * truth, truth, operator)  # any scale of the truth
    assert best == pytest.approx(solve_loss(truth, truth, operator).item(), rel=1e-5)
    shifted = solve_loss(truth.roll(500, dims=1), truth, operator)
    assert shifted > best + 1
    # the solve from a prior on the true sources beats the one from a wrong prior
    moments = generator.source_map(batch)
    right = 1e-3 + (moments > 0).float() * 1e3
    wrong = right.roll(500, dims=1)
    cache = {}
    losses = [
        solve_loss(
            solve_windows(generator, batch, p, n_iter=3, cache=cache), truth, operator
        )
        for p in (right, wrong)
    ]
    assert losses[0] < losses[1]


def test_training_through_the_solve(generator, parcellation):
    kwargs = dict(parcellation=parcellation, batch_size=4, net_kwargs=NET, lr=3e-3)
    model = train_prior(
        generator, steps=3, objective="unrolled", n_iter=2, verbose=False, **kwargs
    )
    training = model.config["training"]
    assert training["n_iter"] == 2 and training["objective"].startswith("unrolled")
    for p in model.net.parameters():
        assert torch.isfinite(p).all()
    with pytest.raises(ValueError, match="objective"):
        train_prior(generator, steps=1, objective="support", **kwargs)
