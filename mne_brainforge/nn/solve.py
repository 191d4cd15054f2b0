"""The sparse Bayesian solve as a differentiable, batched torch function.

The estimator (:mod:`mne_brainforge.inverse`) solves with the prior the
network sets; this is that solve as a layer of the network's stage, below
training. :func:`~mne_brainforge.inverse.sparse_bayes.sparse_bayes_solve` runs the
Champagne updates in numpy, one window at a time, with pruning and a
convergence test: right for estimates, useless for training. Here the same
updates run for a fixed number of iterations on a batch of windows, without
pruning, so that a loss on the estimate can be backpropagated to the prior the
solve starts from: the network that sets the prior is then trained for the
estimate the solve makes of it, not for the prior alone.
"""

import torch

from ..utils import check_int


def unrolled_sparse_bayes(gain, data, gamma0, *, n_iter=5, rank=None):
    """Champagne iterations from a prior, batched and differentiable.

    Parameters
    ----------
    gain : torch.Tensor, shape (B, C, N)
        Whitened, depth-scaled gain of each window (noise covariance
        ``lambda * I`` on the whitened data's subspace; zero rows for padding
        channels).
    data : torch.Tensor, shape (B, C, T)
        Whitened data in the same subspace as the gain's columns (the updates
        see them through their covariance only, not differentiated).
    gamma0 : torch.Tensor, shape (B, N)
        Prior source variances (relative, non-negative).
    n_iter : int
        Iterations (a fixed number: every window runs them all).
    rank : torch.Tensor, shape (B,) | None
        Dimension of each window's whitened data subspace (e.g. channels in use
        minus one for the average reference); None for ``C``. The ``C - rank``
        directions outside it carry neither data nor gain, and are left out of
        the noise update.

    Returns
    -------
    x : torch.Tensor, shape (B, N, T)
        Posterior mean of the (depth-scaled) sources.
    gamma : torch.Tensor, shape (B, N)
        Source variances after ``n_iter`` updates.
    noise : torch.Tensor, shape (B,)
        Learned noise variance.

    Notes
    -----
    The updates, the start (noise at 10 % of the data variance, the prior
    scaled so that the model covariance has the trace of the data covariance)
    and the posterior mean are those of :func:`sparse_bayes_solve` with
    ``learn_noise=True``, ``prune=0`` and ``tol=0``, which this function equals
    to float rounding (tested).
    """
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    B, C, T = data.shape
    if gain.ndim != 3 or gain.shape[:2] != (B, C) or gamma0.shape != (B, gain.shape[2]):
        raise ValueError(
            f"gain must be (B, C, N) = ({B}, {C}, N) and gamma0 (B, N), got "
            f"{tuple(gain.shape)} and {tuple(gamma0.shape)}."
        )
    rank = (
        torch.full((B,), float(C), dtype=data.dtype, device=data.device)
        if (rank is None)
        else rank.to(data.dtype)
    )
    n_null = C - rank  # directions of Sigma with eigenvalue lambda and no data
    eye = torch.eye(C, dtype=data.dtype, device=data.device)
    root = data / T**0.5  # root @ root^T = the data covariance
    if T > C:  # the same covariance from a C x C root: cheaper products
        with torch.no_grad():
            eig, vec = torch.linalg.eigh(root @ root.transpose(1, 2))
            root = vec * eig.clamp_min(0).sqrt()[:, None]
    total = root.square().sum((1, 2))
    noise = 0.1 * total / rank
    signal = 0.9 * total  # the trace left to the sources
    gamma = gamma0 * (signal / (gamma0 * gain.square().sum(1)).sum(1))[:, None]
    for _ in range(n_iter):
        chol = _cholesky(gain, gamma, noise, eye)
        inv_chol = torch.linalg.solve_triangular(chol, eye.expand(B, C, C), upper=False)
        white_gain = inv_chol @ gain  # C^-1 L
        white_data = inv_chol @ root  # C^-1 Y
        z = white_gain.square().sum(1)  # l^T S l
        q = (white_data.transpose(1, 2) @ white_gain).square().sum(1)  # l^T S C_y S l
        s_y = inv_chol.transpose(1, 2) @ white_data  # S Y
        trace_s = inv_chol.square().sum((1, 2)) - n_null / noise
        noise = noise * torch.sqrt(s_y.square().sum((1, 2)) / trace_s)
        # clamped: the square root's gradient is infinite at a source with q = 0
        gamma = gamma * torch.sqrt(q.clamp_min(1e-30) / z)
    chol = _cholesky(gain, gamma, noise, eye)
    s_l = torch.cholesky_solve(gain, chol)  # S L
    x = gamma[..., None] * (s_l.transpose(1, 2) @ data)
    return x, gamma, noise


def _cholesky(gain, gamma, noise, eye):
    """Lower Cholesky factor of ``Sigma = L diag(gamma) L^T + noise I`` per window."""
    # L (diag(gamma) L^T), not (L gamma^1/2)(...)^T: no square root to differentiate
    sigma = (gain * gamma[:, None]) @ gain.transpose(1, 2) + noise[:, None, None] * eye
    return torch.linalg.cholesky(sigma)
