"""Training through the solve: the loss is on the estimate the prior leads to.

The prior objective (:func:`~mne_brainforge.training.prior.prior_loss`) asks
the network where the energy is; the estimate, however, is what the sparse
Bayesian solve makes of that prior. Here each window's prior
(:func:`~mne_brainforge.nn.prior.spread_prior`) starts a fixed number of
differentiable solve iterations
(:func:`~mne_brainforge.nn.solve.unrolled_sparse_bayes`) on the window's data,
with the gain a user would have (the template head at the cap's nominal
electrodes, not the head and electrodes that made the data), and the loss
compares the vertex-level estimate with the true sources.

The loss, per window with sources, on maps smoothed by a few diffusion steps on
the cortical mesh (a source found one vertex off is nearly right, not wrong):

- support: the cross-entropy of the true energy shares (mean square over time
  per vertex) against the estimate's;
- time courses: ``1 - cos(J_hat, J)``, the cosine of the signed source time
  courses at every ``TIME_STRIDE``-th sample (the scale of an estimate is the
  data's, not the loss's business).
"""

import torch

from ..nn.prior import (
    diffusion_operator,
    region_shares,
    spread_prior,
    torch_operator,
)
from ..nn.solve import unrolled_sparse_bayes

#: Diffusion steps that smooth the estimated and true maps before comparing.
LOSS_SMOOTHING = 4
#: The time-course term compares every this-many-th sample.
TIME_STRIDE = 4


def nominal_gain(generator, batch, cache):
    """The template head's gain (V / A·m) at each window's cap: (B, C, N).

    The head model the estimate uses, as a user would compute it for the cap:
    the family's first head model at the superset electrode of each channel
    (no electrode jitter, no gain errors); zero rows for padding.
    """
    if "template" not in cache:
        cache["template"] = torch.as_tensor(
            generator.family.gains[0], dtype=torch.float32, device=generator.device
        )
    rows = cache["template"][batch["channels"].clamp_min(0)]
    return rows * batch["mask"][..., None]


def solve_windows(generator, batch, prior, *, n_iter, depth=0.8, cache):
    """The unrolled sparse Bayesian estimate of each window, from its prior.

    Parameters
    ----------
    generator : BatchedEEGGenerator
        The generator of ``batch``.
    batch : dict
        A batch of :meth:`BatchedEEGGenerator.draw`.
    prior : torch.Tensor, shape (B, n_sources)
        Relative prior variances of the depth-scaled sources (as the estimator
        uses them).
    n_iter : int
        Solve iterations.
    depth : float
        Depth-weighting exponent (the estimator's default).
    cache : dict
        Holds the template gain between calls.

    Returns
    -------
    estimate : torch.Tensor, shape (B, n_sources, T)
        Source moments, relative (each window's data scaled to unit RMS).

    Notes
    -----
    Each window is solved on its own channels only (a batch pads every cap to
    the largest), average-referenced: the data are reference-free after the
    same projection of data and gain, as in the estimator with
    ``noise_cov=None`` (an ad-hoc diagonal covariance: a scalar whitener).
    """
    gain = nominal_gain(generator, batch, cache)
    out = []
    for b in range(len(prior)):
        used = batch["mask"][b].nonzero().squeeze(1)
        data, lead = batch["eeg"][b, used].float(), gain[b, used]
        data = data - data.mean(0)  # the average reference, on data and gain
        lead = lead - lead.mean(0)
        data = data / data.square().mean().sqrt().clamp_min(1e-30)
        scale = lead.norm(dim=0).clamp_min(1e-30) ** -depth
        x, _, _ = unrolled_sparse_bayes(
            (lead * scale)[None],
            data[None],
            prior[b : b + 1],
            n_iter=n_iter,
            rank=torch.tensor([len(used) - 1], device=data.device),
        )
        out.append(x[0] * scale[:, None])
    return torch.stack(out)


def true_activity(generator, batch):
    """The true source moments of every window, (B, n_sources, T), A·m."""
    return torch.stack(
        [generator.source_activity(batch, b) for b in range(len(batch["eeg"]))]
    )


def solve_loss(estimate, truth, operator, *, n_smooth=LOSS_SMOOTHING, eps=1e-12):
    """Support cross-entropy + time-course cosine of smoothed maps (see module).

    Parameters
    ----------
    estimate, truth : torch.Tensor, shape (B, n_sources, T)
        Estimated and true source moments (any scale each).
    operator : torch.Tensor, shape (n_sources, n_sources)
        The :func:`~mne_brainforge.nn.prior.torch_operator` of the mesh.
    n_smooth : int
        Diffusion steps of both maps.

    Returns
    -------
    loss : torch.Tensor
        Mean over the windows with sources (0 if there are none).
    """
    has = truth.flatten(1).abs().amax(1) > 0
    if not has.any():
        return estimate.sum() * 0.0
    # each map on its own scale (A·m are ~1e-8: their squares would meet eps)
    estimate, truth = (
        x / x.abs().amax((1, 2), keepdim=True).clamp_min(1e-30)
        for x in (estimate[has], truth[has])
    )

    def smooth(x):  # (B, N, ...) -> the same, n_smooth diffusion steps
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        for _ in range(n_smooth):
            flat = operator @ flat
        return flat.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)

    est_energy, true_energy = (
        smooth(estimate.square().mean(-1)),
        smooth(truth.square().mean(-1)),
    )
    est_share = est_energy / est_energy.sum(1, keepdim=True).clamp_min(eps)
    true_share = true_energy / true_energy.sum(1, keepdim=True)
    support = -(true_share * (est_share + eps).log()).sum(1)
    # time courses at every TIME_STRIDE-th sample: the cosine hardly changes, and
    # smoothing the full (n_sources, T) maps was most of a training step's time
    est, tru = (smooth(x[..., ::TIME_STRIDE]).flatten(1) for x in (estimate, truth))
    cosine = torch.nn.functional.cosine_similarity(est, tru, dim=1, eps=eps)
    return (support + 1 - cosine).mean()


class ThroughSolveObjective:
    """The loss of a shard of windows through the solve (see the module).

    Parameters
    ----------
    generator : BatchedEEGGenerator
        The training data.
    parcellation : Parcellation
        The network's regions.
    n_iter : int
        Unrolled solve iterations.
    """

    def __init__(self, generator, parcellation, n_iter):
        self.generator, self.parcellation, self.n_iter = generator, parcellation, n_iter
        self.cache = {}

    def _operator(self):
        if "operator" not in self.cache:
            self.cache["operator"] = torch_operator(
                diffusion_operator(self.parcellation.graph),
                dtype=torch.float32,
                device=self.generator.device,
            )
        return self.cache["operator"]

    def __call__(self, regions, batch):
        """Loss of the network's ``regions`` (B, R, T) on ``batch``."""
        prior = spread_prior(
            region_shares(regions), self.parcellation, operator=self._operator()
        )
        estimate = solve_windows(
            self.generator, batch, prior, n_iter=self.n_iter, cache=self.cache
        )
        truth = true_activity(self.generator, batch)
        return solve_loss(estimate, truth, self._operator())
