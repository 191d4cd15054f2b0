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

import contextlib
import copy
import dataclasses
import json
import os
import socket
import tempfile
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
from ..nn.prior import region_shares
from ..nn.topomap import masked_topomap_matrix
from ..simulation import seed_for
from ..utils import atomic_path, check_int, check_number, check_option
from .through_solve import ThroughSolveObjective

#: Training objectives of :func:`train_prior`.
OBJECTIVES = ("prior", "unrolled")


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
    :func:`~mne_brainforge.nn.prior.region_shares`.
    """
    return -(target * region_shares(regions, eps).log()).sum(1).mean()


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


def _warmup_fraction(steps):
    """5 % warm-up, at least 2 steps: OneCycleLR divides by zero when the
    warm-up ends on step 1 (e.g. 5 % of 20 steps) or on the last step."""
    return max(0.05, 2 / steps) if steps >= 4 else 0.3


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
    nproc=1,
    accumulate=1,
    objective="prior",
    n_iter=5,
    verbose=None,
):
    """Train (or fine-tune) a BrainForge network for the prior, on the batched engine.

    Parameters
    ----------
    generator : BatchedEEGGenerator
        The training data (its head-model family fixes the source space); the
        network trains on the generator's device.
    parcellation : Parcellation | None
        The network's regions; None parcellates the family's source space into
        ``n_regions`` (ignored with ``init``).
    n_regions : int
        Number of regions when ``parcellation`` is None.
    init : BrainForgeModel | None
        Start from this model (its network, regions and settings).
    steps : int
        Optimizer steps (``steps * batch_size * nproc * accumulate`` windows).
    batch_size : int
        Windows per shard (see ``accumulate``).
    lr : float
        Peak learning rate (AdamW, cosine decay).
    topomap_size : int
        Scalp-map grid size (ignored with ``init``).
    net_kwargs : dict | None
        Arguments of :class:`~mne_brainforge.nn.BrainForgeNet` (ignored with
        ``init``).
    seed : int
        Base seed of the batches and of the weights: shard ``s`` of step ``k``
        draws ``seed_for(seed, rank=s, step=k)``, so no two shards (ranks or
        accumulated sub-batches) share a sample.
    checkpoint : path-like | None
        File of the training state, written every ``checkpoint_every`` seconds
        and at the end; an existing one is resumed.
    checkpoint_every : float
        Seconds between checkpoints.
    max_time : float | None
        Stop after this many seconds of this call (the checkpoint keeps the rest).
    nproc : int
        Processes of a DistributedDataParallel run on the CPU (gloo backend,
        spawned here), each drawing its own shards; the gradients are averaged.
        Under ``torchrun`` the ranks are torchrun's (leave ``nproc=1``): each
        process trains as one rank, NCCL on CUDA and gloo on the CPU.
    accumulate : int
        Shards of ``batch_size`` windows per process and step, their gradients
        accumulated: a step sees ``nproc * accumulate`` shards either way, so
        ``nproc=2`` and ``accumulate=2`` in one process train on the same
        windows.
    objective : 'prior' | 'unrolled'
        ``'prior'``: the region energy shares against the truth's
        (:func:`prior_loss`; the prior is trained on its own and then frozen
        for the solve). ``'unrolled'``: through ``n_iter`` differentiable
        iterations of the sparse Bayesian solve started from the network's
        prior, a loss on the vertex-level estimate
        (:mod:`mne_brainforge.training.through_solve`); much slower per
        window.
    n_iter : int
        Solve iterations of the ``'unrolled'`` objective.
    %(verbose)s

    Returns
    -------
    model : BrainForgeModel
        The network with its regions and settings, ready for
        :func:`~mne_brainforge.apply_brainforge_inverse`.

    Notes
    -----
    A DDP run and its one-process equivalent agree up to float summation
    order in the parameters; BatchNorm running statistics (used only at
    inference) follow rank 0's shards in the DDP run, all shards otherwise.
    Several GPUs, or several machines: start the script (or ``brainforge
    train-prior --device cuda``) with ``torchrun --nproc-per-node N``; each rank
    draws on its own device (``cuda:LOCAL_RANK``), the ranks meet through
    torchrun's environment (``env://``) and average their gradients with NCCL;
    every rank returns the same trained model and rank 0 writes the checkpoint.
    On one GPU, a generator on CUDA and ``nproc=1`` suffice.

    Examples
    --------
    >>> from mne_brainforge.head import make_head_model_family
    >>> from mne_brainforge.simulation import BatchedEEGGenerator, fetch_waveform_bank
    >>> generator = BatchedEEGGenerator(make_head_model_family(), fetch_waveform_bank())
    >>> model = train_prior(generator, steps=20000, checkpoint="prior-ckpt.pt")
    """
    steps = check_int(steps, "steps", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    nproc = check_int(nproc, "nproc", 1)
    accumulate = check_int(accumulate, "accumulate", 1)
    lr = check_number(lr, "lr", minimum=0, strict=True)
    check_option("objective", objective, OBJECTIVES)
    n_iter = check_int(n_iter, "n_iter", 1)
    if nproc > 1 and generator.device.type != "cpu":
        raise ValueError(
            f"nproc={nproc} runs DistributedDataParallel on the CPU (gloo), but the "
            f"generator draws on {generator.device}: use nproc=1 on one GPU, or "
            "torchrun --nproc-per-node N for several GPUs (NCCL)."
        )
    launched = torch.distributed.is_torchelastic_launched()
    if launched and nproc > 1:
        raise ValueError(
            f"nproc={nproc} spawns ranks, but this process is already one of "
            "torchrun's ranks: leave nproc at 1 and set torchrun's --nproc-per-node."
        )
    if init is not None:
        parcellation, config = init.parcellation, dict(init.config)
        net = copy.deepcopy(init.net)  # fine-tuning leaves the given model as it was
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
    run = _PriorRun(
        generator=generator,
        net=net,
        parcellation=parcellation,
        size=config["topomap"]["size"],
        steps=steps,
        batch_size=batch_size,
        accumulate=accumulate,
        lr=lr,
        seed=seed,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        max_time=max_time,
        through_solve=(
            ThroughSolveObjective(generator, parcellation, n_iter)
            if objective == "unrolled"
            else None
        ),
    )
    if launched:
        nproc = int(os.environ["WORLD_SIZE"])
        state = run(int(os.environ["RANK"]), nproc)
    elif nproc == 1:
        state = run(0, 1)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            if checkpoint is None:  # the ranks hand the weights back through it
                run = dataclasses.replace(run, checkpoint=Path(tmp) / "prior.pt")
            torch.multiprocessing.spawn(
                run, args=(nproc, _free_port()), nprocs=nproc, join=True
            )
            blob = torch.load(run.checkpoint, weights_only=True)
        net.load_state_dict(blob["net"])
        state = json.loads(blob["state"])
    net.eval()
    windows = batch_size * accumulate * nproc
    config["training"] = dict(
        objective=(
            "prior (region energy share, cross-entropy)"
            if objective == "prior"
            else f"unrolled ({n_iter} sparse Bayesian iterations; support "
            "cross-entropy + time-course cosine)"
        ),
        n_iter=n_iter if objective == "unrolled" else None,
        steps_done=state["step"],
        windows_seen=state["step"] * windows,
        batch_size=windows,
        nproc=nproc,
        lr=lr,
        seed=seed,
        wall_time_s=state["wall_time_s"],
        device=str(generator.device),
        n_channels=int(generator.family.n_channels),
    )
    return BrainForgeModel(net, parcellation, config)


def distributed_backend(device):
    """The collective backend of DDP ranks drawing on ``device``: NCCL on CUDA, else gloo."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def is_main_process():
    """Whether this process writes results: not a torchrun rank other than 0."""
    return not torch.distributed.is_torchelastic_launched() or (
        int(os.environ.get("RANK", "0")) == 0
    )


def _free_port():
    """A free TCP port on the loopback interface, for the ranks' rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class _PriorRun:
    """The training loop of :func:`train_prior`, one call per rank (picklable)."""

    generator: object
    net: torch.nn.Module
    parcellation: object
    size: int
    steps: int
    batch_size: int
    accumulate: int
    lr: float
    seed: int
    checkpoint: object
    checkpoint_every: float
    max_time: object
    through_solve: object = None

    def __call__(self, rank, world, port=None):
        """Train as rank ``rank`` of ``world``; ``port``: the spawned ranks'
        loopback rendezvous, None under torchrun (its ``env://``)."""
        device = self.generator.device
        net = self.net.to(device)
        if port is not None:
            # spawn hands tensors over in shared memory: each rank steps its own copy
            net = copy.deepcopy(net)
        if world > 1:
            backend = distributed_backend(device)
            if backend == "nccl":
                torch.cuda.set_device(device)
            else:  # the ranks of one machine share its cores
                local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
            torch.distributed.init_process_group(
                backend,
                init_method="env://" if port is None else f"tcp://127.0.0.1:{port}",
                rank=rank,
                world_size=world,
            )
            model = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device] if backend == "nccl" else None
            )
        else:
            model = net
        try:
            return self._loop(model, net, rank, world)
        finally:
            if world > 1:
                torch.distributed.destroy_process_group()

    def _loop(self, model, net, rank, world):
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.lr,
            total_steps=self.steps,
            pct_start=_warmup_fraction(self.steps),
        )
        state = dict(step=0, wall_time_s=0.0, history=[])
        ckpt = self.checkpoint
        if ckpt is not None and Path(ckpt).is_file():
            blob = torch.load(
                ckpt, map_location=self.generator.device, weights_only=True
            )
            net.load_state_dict(blob["net"])
            optimizer.load_state_dict(blob["optimizer"])
            scheduler.load_state_dict(blob["scheduler"])
            state = json.loads(blob["state"])
            if rank == 0:
                logger.info(f"Resuming the prior training at step {state['step']}")

        def save_checkpoint():
            if ckpt is None or rank != 0:
                return
            blob = dict(
                net=net.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                state=json.dumps(state),
            )
            with atomic_path(ckpt) as tmp:
                torch.save(blob, tmp)

        cache, t_start, t_saved = {}, time.perf_counter(), time.perf_counter()
        model.train()
        bar = tqdm(
            total=self.steps,
            initial=state["step"],
            desc="prior training",
            disable=rank != 0,
        )
        with bar:
            while state["step"] < self.steps:
                t0 = time.perf_counter()
                optimizer.zero_grad()
                total = 0.0
                for j in range(self.accumulate):
                    shard = rank * self.accumulate + j
                    sync = world == 1 or j == self.accumulate - 1
                    with contextlib.nullcontext() if sync else model.no_sync():
                        loss = self._shard_loss(model, state["step"], shard, cache)
                        (loss / self.accumulate).backward()
                    total += loss.item() / self.accumulate
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                state["step"] += 1
                state["wall_time_s"] += time.perf_counter() - t0
                if state["step"] % 10 == 0:
                    state["history"].append((state["step"], total))
                bar.set_postfix(loss=f"{total:.3f}")
                bar.update()
                now = time.perf_counter()
                if now - t_saved > self.checkpoint_every:
                    save_checkpoint()
                    t_saved = now
                if self._stop(now - t_start, world):
                    if rank == 0:
                        logger.info(f"Stopping at step {state['step']} (max_time)")
                    break
        save_checkpoint()
        return state

    def _shard_loss(self, model, step, shard, cache):
        """The loss of one shard of windows (its own seed stream)."""
        generator, device = self.generator, self.generator.device
        batch = generator.draw(self.batch_size, seed_for(self.seed, shard, step=step))
        eeg = batch["eeg"].float()
        eeg = eeg / eeg.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
        maps = _topomaps(batch, self.size, cache).to(device)
        regions = model(eeg, maps)
        if self.through_solve is not None:
            return self.through_solve(regions, batch)
        target = region_targets(generator.source_map(batch), self.parcellation)
        return prior_loss(regions, target)

    def _stop(self, elapsed, world):
        """Whether max_time is up; the ranks agree (rank 0's clock decides)."""
        if self.max_time is None:
            return False
        # on the ranks' device: NCCL broadcasts CUDA tensors only
        stop = torch.tensor(
            float(elapsed > self.max_time), device=self.generator.device
        )
        if world > 1:
            torch.distributed.broadcast(stop, 0)
        return bool(stop)
