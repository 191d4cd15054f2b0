"""The network's region output as a prior over the sources."""

import numpy as np
import pytest
import torch

from mne_brainforge.datasets import read_fsaverage_source_space
from mne_brainforge.head import parcellate_source_space
from mne_brainforge.nn.prior import (
    PRIOR_FLOOR,
    diffusion_operator,
    region_energy,
    source_prior,
    spread_prior,
    torch_operator,
)


@pytest.fixture(scope="module")
def parcellation(subjects_dir):
    src = read_fsaverage_source_space(subjects_dir)
    return parcellate_source_space(src, 100, seed=0, verbose=False)


def test_prior_follows_the_region_and_spreads(parcellation):
    n_regions = parcellation.n_regions
    regions = np.zeros((1, n_regions, 20))
    target = 7
    regions[0, target] = np.sin(np.linspace(0, 3, 20))
    prior = source_prior(region_energy(regions), parcellation)
    assert prior.shape == (parcellation.n_sources,)
    np.testing.assert_allclose(prior.mean(), 1.0)
    inside = parcellation.labels == target
    assert prior[inside].min() > PRIOR_FLOOR and prior.min() >= PRIOR_FLOOR
    # the prior falls off with the distance from the region, not at its border
    dist = np.linalg.norm(parcellation.pos - parcellation.centres[target], axis=1)
    near = ~inside & (dist < 0.02)
    far = dist > 0.08
    assert prior[near].mean() > 10 * PRIOR_FLOOR
    np.testing.assert_allclose(prior[far], PRIOR_FLOOR, rtol=1e-6)
    assert prior[inside].mean() > prior[near].mean()
    # without diffusion: piecewise constant
    flat = source_prior(region_energy(regions), parcellation, n_steps=0)
    assert np.ptp(flat[inside]) == 0 and np.allclose(flat[~inside], PRIOR_FLOOR)


def test_prior_combines_windows_by_weight(parcellation):
    regions = np.zeros((2, parcellation.n_regions, 10))
    regions[0, 3], regions[1, 50] = 1.0, 1.0
    energy = region_energy(regions)
    prior = source_prior(energy, parcellation, weights=[3.0, 1.0], n_steps=0)
    a = prior[parcellation.labels == 3][0] - PRIOR_FLOOR
    b = prior[parcellation.labels == 50][0] - PRIOR_FLOOR
    sizes = parcellation.sizes
    np.testing.assert_allclose(a / b, 3.0 * sizes[50] / sizes[3])


def test_diffusion_preserves_mass_and_bad_input(parcellation):
    walk = diffusion_operator(parcellation.graph)
    np.testing.assert_allclose(np.asarray(walk.sum(axis=1)).ravel(), 1.0)
    with pytest.raises(ValueError, match="energy must have shape"):
        source_prior(np.zeros((1, 3)), parcellation)
    with pytest.raises(ValueError, match="regions must have shape"):
        region_energy(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="floor"):
        source_prior(np.zeros((1, parcellation.n_regions)), parcellation, floor=-1)
    # a network that sees nothing gives the flat prior
    blind = source_prior(np.zeros((1, parcellation.n_regions)), parcellation)
    np.testing.assert_array_equal(blind, 1.0)


def test_torch_operator_is_the_transposed_walk(parcellation):
    """The cached torch (CSR) operator spreads as W^T does, with gradients."""
    walk = diffusion_operator(parcellation.graph)
    rng = np.random.default_rng(0)
    p = rng.random((parcellation.n_sources, 2))
    spread = torch_operator(walk) @ torch.as_tensor(p)
    np.testing.assert_allclose(spread.numpy(), walk.T @ p, rtol=1e-12)
    share = torch.rand(2, parcellation.n_regions, dtype=torch.float64)
    share.requires_grad_(True)
    prior = spread_prior(share, parcellation, operator=torch_operator(walk))
    np.testing.assert_allclose(
        prior.detach().numpy(),
        [source_prior(s[None], parcellation) for s in share.detach().numpy()],
        rtol=1e-10,
    )
    prior[:, parcellation.labels == 3].sum().backward()
    assert share.grad[:, 3].min() > 0  # more share in region 3: more prior there
