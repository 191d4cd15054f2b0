"""Training losses.

Supervised term: relative squared error between predicted and true region time
courses of each window, ``||J^ - J||^2 / ||J||^2`` (true regions divided by their
maximum magnitude; the network sees input maps divided by theirs), averaged
over windows. Plain MSE, as DeepSIF used, has a trap on our sparse targets (1-3
patches among hundreds of regions, active a fraction of the window): predicting
zero everywhere already scores a tiny error, and a short training run stalls
there (measured: AUC 0.5 after 500 steps). Normalising by the target's energy
gives the all-zero answer an error of exactly 1, so only finding the sources
lowers it. The physics terms below are optional extras whose value the
ablations measure.

Forward consistency: the predicted regions, spread over their sources and put
back through the gain, should explain the input EEG: ``||M (G_R J^ s - V)||^2 /
||M V||^2`` with ``G_R`` the region gain (the gain summed over each region's
sources, as the target is the mean moment of a region), ``s`` the ratio of the
target and EEG scales, ``M`` the mask of channels in use.

Laplacian smoothness: ``J^T L_g J^`` with ``L_g`` the graph Laplacian of the
region adjacency, which penalises differences between neighbouring regions.
"""

import numpy as np
import torch
from scipy import sparse


class BrainForgeLoss(torch.nn.Module):
    """Supervised relative MSE + optional forward-consistency and Laplacian terms.

    Parameters
    ----------
    region_gain : ndarray, shape (n_channels, n_regions) | None
        Gain of each region (needed if ``forward_weight > 0``).
    adjacency : scipy.sparse matrix, shape (n_regions, n_regions) | None
        Region adjacency (needed if ``laplacian_weight > 0``).
    forward_weight, laplacian_weight : float
        Weights of the two physics terms (0 disables them).

    See Also
    --------
    train_model : Uses this loss.

    Notes
    -----
    See :mod:`mne_brainforge.training.losses` for the terms.

    Examples
    --------
    With ``simulator`` an :class:`~mne_brainforge.simulation.EEGSimulator`,
    ``batch`` a batch of its :class:`~mne_brainforge.simulation.SyntheticEEGDataset`
    and ``net`` a :class:`~mne_brainforge.nn.BrainForgeNet`:

    >>> from mne_brainforge.training import BrainForgeLoss
    >>> criterion = BrainForgeLoss()  # the supervised term only
    >>> parcellation = simulator.parcellation
    >>> region_gain = simulator.gain @ parcellation.region_matrix().toarray()  # (C, R)
    >>> criterion = BrainForgeLoss(region_gain, parcellation.adjacency,
    ...                            forward_weight=0.1, laplacian_weight=0.01)
    >>> loss, terms = criterion(net(batch["eeg"], topo), batch)
    >>> loss.backward()
    """

    def __init__(
        self,
        region_gain=None,
        adjacency=None,
        *,
        forward_weight=0.0,
        laplacian_weight=0.0,
    ):
        super().__init__()
        self.forward_weight, self.laplacian_weight = (
            float(forward_weight),
            float(laplacian_weight),
        )
        if self.forward_weight > 0:
            gain = torch.as_tensor(np.asarray(region_gain), dtype=torch.float32)
            self.register_buffer("region_gain", gain)
        if self.laplacian_weight > 0:
            adjacency = sparse.csr_matrix(adjacency, dtype=float)
            adjacency.data[:] = 1.0
            lap = sparse.diags(np.asarray(adjacency.sum(1)).ravel()) - adjacency
            self.register_buffer(
                "laplacian", torch.as_tensor(lap.toarray(), dtype=torch.float32)
            )

    def forward(self, pred, batch):
        """Return the total loss and its terms (dict of floats).

        Parameters
        ----------
        pred : torch.Tensor, shape (B, R, T)
            Predicted region time courses (the network's output).
        batch : dict of str -> torch.Tensor
            A batch of :class:`~mne_brainforge.simulation.SyntheticEEGDataset`
            items: ``target`` (B, R, T) and, for the forward term, ``eeg``
            (B, C, T), ``mask`` (B, C), ``eeg_scale`` and ``target_scale``
            (B,).

        Returns
        -------
        loss : torch.Tensor
            The weighted sum of the terms (a scalar, to back-propagate).
        terms : dict of str -> float
            ``relative_mse``, and ``forward`` and ``laplacian`` where their
            weights are positive.

        Examples
        --------
        >>> loss, terms = criterion(pred, batch)  # calls forward
        >>> sorted(terms)
        ['forward', 'laplacian', 'relative_mse']
        """
        target = batch["target"]
        error = torch.sum((pred - target) ** 2, dim=(1, 2))
        supervised = torch.mean(
            error / torch.sum(target**2, dim=(1, 2)).clamp_min(1e-12)
        )
        terms = {"relative_mse": supervised.detach().item()}
        total = supervised
        if self.forward_weight > 0:
            ratio = (batch["target_scale"] / batch["eeg_scale"]).to(pred.dtype)[
                :, None, None
            ]
            mask = batch["mask"].to(pred.dtype)[:, :, None]
            predicted = torch.matmul(self.region_gain, pred) * ratio
            # average reference over the channels in use, as the input EEG
            mean = torch.sum(predicted * mask, 1, keepdim=True) / mask.sum(
                1, keepdim=True
            )
            predicted = (predicted - mean) * mask
            eeg = batch["eeg"] * mask
            consistency = torch.sum((predicted - eeg) ** 2) / torch.sum(
                eeg**2
            ).clamp_min(1e-12)
            total = total + self.forward_weight * consistency
            terms["forward"] = consistency.detach().item()
        if self.laplacian_weight > 0:
            smooth = (
                torch.einsum("brt,rs,bst->", pred, self.laplacian, pred) / pred.numel()
            )
            total = total + self.laplacian_weight * smooth
            terms["laplacian"] = smooth.detach().item()
        return total, terms
