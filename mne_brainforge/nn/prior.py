"""From the network's region time courses to a prior over the sources.

The sparse Bayesian solve of the inverse stage needs a prior variance for every
source. The network speaks in regions; a region's energy is spread over its
sources and smoothed across region borders by a few steps of diffusion on the
cortical mesh, so the prior has no flat blocks with hard edges (a source just
outside a region the network points to keeps a good part of its prior). A floor
keeps every source alive: sparse Bayesian updates can never revive a source whose
prior is zero, and the data must be able to overrule the network.
"""

import warnings

import numpy as np
import torch
from scipy import sparse

from ..utils import check_int, check_number

#: Diffusion steps that spread a region's prior over the neighbouring sources
#: (about one region radius on the ico5 template).
DIFFUSION_STEPS = 8
#: Fraction of the mean prior every source keeps.
PRIOR_FLOOR = 0.02


def diffusion_operator(graph, alpha=0.5):
    """Row-stochastic lazy random walk ``(1 - alpha) I + alpha D^-1 A`` of a mesh graph.

    Parameters
    ----------
    graph : scipy.sparse matrix, shape (n_sources, n_sources)
        Adjacency of the source-space mesh (any positive weights).
    alpha : float
        Share of a source's value that moves to its neighbours per step.

    Returns
    -------
    operator : scipy.sparse.csr_matrix, shape (n_sources, n_sources)
    """
    adjacency = sparse.csr_matrix(graph, copy=True)
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    walk = sparse.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
    walk = (1 - alpha) * sparse.identity(graph.shape[0]) + alpha * walk
    return sparse.csr_matrix(walk)


def region_energy(regions):
    """Each window's share of energy per region, from the network's time courses.

    Parameters
    ----------
    regions : ndarray, shape (n_windows, n_regions, n_times)
        The network's output (:meth:`BrainForgeModel.predict_regions`).

    Returns
    -------
    energy : ndarray, shape (n_windows, n_regions)
        Mean square over time, each window summing to 1 (0 if all zero).
    """
    regions = np.asarray(regions, float)
    if regions.ndim != 3:
        raise ValueError(
            f"regions must have shape (n_windows, n_regions, n_times), got "
            f"{regions.shape}."
        )
    energy = np.mean(regions**2, axis=-1)
    return energy / np.maximum(energy.sum(axis=1, keepdims=True), 1e-300)


def region_shares(regions, eps=1e-8):
    """The network's energy share per region, in torch (differentiable).

    Parameters
    ----------
    regions : torch.Tensor, shape (B, n_regions, n_times)
        The network's output.
    eps : float
        Added to every region's mean square, so no share is exactly 0 (the
        training losses take its logarithm).

    Returns
    -------
    share : torch.Tensor, shape (B, n_regions)
        ``mean_t(regions**2) + eps``, summing to 1 per window.
    """
    energy = regions.pow(2).mean(-1) + eps
    return energy / energy.sum(1, keepdim=True)


def source_prior(
    energy,
    parcellation,
    *,
    weights=None,
    n_steps=DIFFUSION_STEPS,
    floor=PRIOR_FLOOR,
    operator=None,
):
    """Prior source variances from the region energies of one or more windows.

    Parameters
    ----------
    energy : ndarray, shape (n_windows, n_regions)
        Region energies (:func:`region_energy`).
    parcellation : Parcellation
        The regions' sources.
    weights : ndarray, shape (n_windows,) | None
        Weight of each window in the combined prior (e.g. its data power); None
        for equal weights.
    n_steps : int
        Diffusion steps on the mesh (0: piecewise constant per region).
    floor : float
        Every source keeps at least this fraction of the mean prior.
    operator : scipy.sparse matrix | torch.Tensor | None
        A precomputed :func:`diffusion_operator` of ``parcellation.graph``, or
        its :func:`torch_operator` (faster when called again and again).

    Returns
    -------
    prior : ndarray, shape (n_sources,)
        Non-negative, mean 1 (relative: the solver fixes the scale from the
        data); all ones if the network sees nothing.
    """
    energy = np.atleast_2d(np.asarray(energy, float))
    if energy.ndim != 2 or energy.shape[1] != parcellation.n_regions:
        raise ValueError(
            f"energy must have shape (n_windows, {parcellation.n_regions}), got "
            f"{energy.shape}."
        )
    weights = np.ones(len(energy)) if weights is None else np.asarray(weights, float)
    combined = weights @ energy / max(weights.sum(), 1e-300)
    prior = spread_prior(
        torch.as_tensor(combined[np.newaxis]),
        parcellation,
        n_steps=n_steps,
        floor=floor,
        operator=operator,
    )
    return prior[0].numpy()


def spread_prior(
    share, parcellation, *, n_steps=DIFFUSION_STEPS, floor=PRIOR_FLOOR, operator=None
):
    """Prior source variances from region shares, in torch (differentiable).

    The one implementation of the prior (:func:`source_prior` calls it), so
    that a network trained through the solve
    (:func:`~mne_brainforge.training.train_prior` with ``objective='unrolled'``)
    sees the prior the estimator uses.

    Parameters
    ----------
    share : torch.Tensor, shape (B, n_regions)
        Non-negative region energy shares of ``B`` windows.
    parcellation : Parcellation
        The regions' sources.
    n_steps, floor, operator
        As in :func:`source_prior`; ``operator`` may also be the
        :func:`torch_operator` of one.

    Returns
    -------
    prior : torch.Tensor, shape (B, n_sources)
        Mean 1 per window (all ones where ``share`` is all zero).
    """
    n_steps = check_int(n_steps, "n_steps", 0)
    floor = check_number(floor, "floor", minimum=0)
    if share.ndim != 2 or share.shape[1] != parcellation.n_regions:
        raise ValueError(
            f"share must have shape (B, {parcellation.n_regions}), got "
            f"{tuple(share.shape)}."
        )
    labels = torch.as_tensor(parcellation.labels, device=share.device)
    sizes = torch.as_tensor(parcellation.sizes, dtype=share.dtype, device=share.device)
    # a region's energy shared among its sources, so big regions are not favoured
    prior = (share / sizes).index_select(1, labels)
    if n_steps:
        if not isinstance(operator, torch.Tensor):
            operator = torch_operator(
                diffusion_operator(parcellation.graph)
                if operator is None
                else operator,
                dtype=share.dtype,
                device=share.device,
            )
        for _ in range(n_steps):  # mass-preserving spread: prior <- W^T prior
            prior = (operator @ prior.T).T
    mean = prior.mean(1, keepdim=True)
    spread = (1 - floor) * prior / mean.clamp_min(1e-300) + floor
    # a network that sees nothing: the flat prior
    return torch.where(mean > 0, spread, torch.ones_like(spread))


def torch_operator(operator, *, dtype=torch.float64, device="cpu"):
    """The transpose of a :func:`diffusion_operator` as a torch sparse matrix.

    ``torch_operator(W) @ p`` is ``W.T @ p``: the spread of :func:`spread_prior`.
    """
    csr = sparse.csr_array(operator.T)
    csr.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        # CSR, not COO: the spread's products are 15x faster on the CPU (measured)
        return torch.sparse_csr_tensor(
            torch.as_tensor(csr.indptr, dtype=torch.long),
            torch.as_tensor(csr.indices, dtype=torch.long),
            torch.as_tensor(csr.data, dtype=dtype),
            csr.shape,
            device=device,
        )
