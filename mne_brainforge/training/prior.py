"""Training the network for what the estimator needs from it: a prior over the sources.

The estimate itself comes from the sparse Bayesian solve
(:mod:`mne_brainforge.inverse.sparse_bayes`); the network only has to say where
the energy is. So the target of a window is the share of the true source energy
in each region (uniform for a window with no source: the flat prior), and the
loss is the cross-entropy of the network's region energy shares
(:func:`mne_brainforge.nn.prior.region_energy` of its output) against it. The
training data come from the batched engine
(:class:`~mne_brainforge.simulation.BatchedEEGGenerator`): any vertex, 0-5
sources of any extent, a family of head models, caps with dropouts, random
references and noise, each step a fresh batch from its own seed stream.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
from mne.utils import logger, verbose
from scipy import sparse
from tqdm.auto import tqdm

from ..head import parcellate_source_space
from ..nn.model import BrainForgeModel
from ..nn.network import BrainForgeNet
from ..nn.topomap import masked_topomap_matrix
from ..simulation import seed_for
from ..utils import atomic_path, check_int, check_number


def region_targets(source_map, parcellation):
    """Each window's share of true source energy per region, (B, n_regions).

    Parameters
    ----------
    source_map : torch.Tensor, shape (B, n_sources)
        Peak moment per vertex (:meth:`BatchedEEGGenerator.source_map`).
    parcellation : Parcellation
        The network's regions.

    Returns
    -------
    target : torch.Tensor, shape (B, n_regions)
        Sums to 1 per window; uniform where there is no source.
    """
    matrix = torch.as_tensor(
        sparse.csr_matrix(parcellation.region_matrix()).toarray(),
        dtype=source_map.dtype,
        device=source_map.device,
    )
    energy = (source_map**2) @ matrix
    total = energy.sum(1, keepdim=True)
    uniform = torch.full_like(energy, 1.0 / energy.shape[1])
    return torch.where(total > 0, energy / total.clamp_min(1e-30), uniform)


def prior_loss(regions, target, eps=1e-8):
    """Cross-entropy of the network's region energy shares against the target.

    ``regions`` (B, R, T) is the network's output; its energy shares are
    ``mean_t(regions**2)`` normalised per window.
    """
    energy = regions.pow(2).mean(-1) + eps
    share = energy / energy.sum(1, keepdim=True)
    return -(target * share.log()).sum(1).mean()


def _topomaps(batch, size, cache):
    """Scalp-map matrices of each window's channels (cached per channel mask)."""
    mats = []
    for pos, mask in zip(batch["ch_pos"].cpu().numpy(), batch["mask"].cpu().numpy()):
        key = (pos.tobytes(), mask.tobytes())
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[key] = masked_topomap_matrix(pos, mask, size)
        mats.append(cache[key])
    return torch.as_tensor(np.stack(mats), dtype=torch.float32)


@verbose
def train_prior(
    generator,
    *,
    parcellation=None,
    n_regions=500,
    init=None,
    steps=1000,
    batch_size=64,
    lr=1e-3,
    topomap_size=16,
    net_kwargs=None,
    seed=0,
    checkpoint=None,
    checkpoint_every=120.0,
    max_time=None,
    verbose=None,
):
    """Train (or fine-tune) a BrainForge network for the prior, on the batched engine.

    Parameters
    ----------
    generator : BatchedEEGGenerator
        The training data (its head-model family fixes the source space).
    parcellation : Parcellation | None
        The network's regions; None parcellates the family's source space into
        ``n_regions`` (ignored with ``init``).
    n_regions : int
        Number of regions when ``parcellation`` is None.
    init : BrainForgeModel | None
        Start from this model (its network, regions and settings).
    steps : int
        Optimizer steps (``steps * batch_size`` windows).
    batch_size : int
        Windows per step.
    lr : float
        Peak learning rate (AdamW, cosine decay).
    topomap_size : int
        Scalp-map grid size (ignored with ``init``).
    net_kwargs : dict | None
        Arguments of :class:`~mne_brainforge.nn.BrainForgeNet` (ignored with
        ``init``).
    seed : int
        Base seed of the batches (step ``k`` draws ``seed_for(seed, step=k)``)
        and of the weights.
    checkpoint : path-like | None
        File of the training state, written every ``checkpoint_every`` seconds
        and at the end; an existing one is resumed.
    checkpoint_every : float
        Seconds between checkpoints.
    max_time : float | None
        Stop after this many seconds of this call (the checkpoint keeps the rest).
    %(verbose)s

    Returns
    -------
    model : BrainForgeModel
        The network with its regions and settings, ready for
        :func:`~mne_brainforge.apply_brainforge_inverse`.

    Examples
    --------
    >>> from mne_brainforge.head import make_head_model_family
    >>> from mne_brainforge.simulation import BatchedEEGGenerator, fetch_waveform_bank
    >>> generator = BatchedEEGGenerator(make_head_model_family(), fetch_waveform_bank())
    >>> model = train_prior(generator, steps=20000, checkpoint="prior-ckpt.pt")
    """
    steps = check_int(steps, "steps", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    lr = check_number(lr, "lr", minimum=0, strict=True)
    if init is not None:
        parcellation, config = init.parcellation, dict(init.config)
        net = init.net
    else:
        if parcellation is None:
            parcellation = parcellate_source_space(
                generator.family.src, n_regions, seed=seed, verbose=False
            )
        net_kwargs = dict(size=topomap_size, **(net_kwargs or {}))
        torch.manual_seed(seed)
        net = BrainForgeNet(parcellation.n_regions, **net_kwargs)
        config = dict(
            sfreq=float(generator.sfreq),
            n_times=int(generator.n_times),
            subject=generator.family.src._subject,
            topomap=dict(size=topomap_size, method="rbf"),
            net=net_kwargs,
        )
    if parcellation.n_sources != generator.family.n_sources:
        raise ValueError(
            f"The regions cover {parcellation.n_sources} sources, the generator's "
            f"source space {generator.family.n_sources}."
        )
    size = config["topomap"]["size"]
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.05
    )
    state = dict(step=0, wall_time_s=0.0, history=[])
    if checkpoint is not None and Path(checkpoint).is_file():
        blob = torch.load(checkpoint, weights_only=True)
        net.load_state_dict(blob["net"])
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        state = json.loads(blob["state"])
        logger.info(f"Resuming the prior training at step {state['step']}")

    def save_checkpoint():
        if checkpoint is None:
            return
        blob = dict(
            net=net.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            state=json.dumps(state),
        )
        with atomic_path(checkpoint) as tmp:
            torch.save(blob, tmp)

    cache, t_start, t_saved = {}, time.perf_counter(), time.perf_counter()
    net.train()
    with tqdm(total=steps, initial=state["step"], desc="prior training") as bar:
        while state["step"] < steps:
            t0 = time.perf_counter()
            batch = generator.draw(batch_size, seed_for(seed, step=state["step"]))
            target = region_targets(generator.source_map(batch), parcellation)
            eeg = batch["eeg"].float().cpu()
            eeg = eeg / eeg.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
            loss = prior_loss(net(eeg, _topomaps(batch, size, cache)), target.cpu())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            state["step"] += 1
            state["wall_time_s"] += time.perf_counter() - t0
            if state["step"] % 10 == 0:
                state["history"].append((state["step"], float(loss)))
            bar.set_postfix(loss=f"{float(loss):.3f}")
            bar.update()
            now = time.perf_counter()
            if now - t_saved > checkpoint_every:
                save_checkpoint()
                t_saved = now
            if max_time is not None and now - t_start > max_time:
                logger.info(f"Stopping at step {state['step']} (max_time)")
                break
    save_checkpoint()
    net.eval()
    config["training"] = dict(
        objective="prior (region energy share, cross-entropy)",
        steps_done=state["step"],
        windows_seen=state["step"] * batch_size,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        wall_time_s=state["wall_time_s"],
        device="cpu",
        n_channels=int(generator.family.n_channels),
    )
    return BrainForgeModel(net, parcellation, config)
