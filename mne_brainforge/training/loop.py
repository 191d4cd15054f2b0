"""``train_model``: train a BrainForge network against any forward model."""

import json
import math
import os
import time
from pathlib import Path

import mne
import numpy as np
import torch
from mne.utils import logger, verbose
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .. import metrics
from ..head.forward import cortex_normal, fixed_orientation_gain
from ..head.parcellation import Parcellation, parcellate_source_space, source_graph
from ..nn.model import BrainForgeModel
from ..nn.network import BrainForgeNet
from ..nn.topomap import MIN_CHANNELS, masked_topomap_matrix
from ..simulation.dataset import EEGSimulator, SyntheticEEGDataset
from ..utils import array_sha256, atomic_path, check_int, check_number, check_type
from .losses import BrainForgeLoss

_CHECKPOINT = "checkpoint.pt"


class _WithTopomaps(torch.utils.data.IterableDataset):
    """Adds each sample's scalp-map matrix for the channels it keeps."""

    def __init__(self, dataset, size, method):
        super().__init__()
        self.dataset, self.size, self.method = dataset, size, method

    def __iter__(self):
        for item in self.dataset:
            matrix = masked_topomap_matrix(
                self.dataset.ch_pos, item["mask"].numpy(), self.size, self.method
            )
            item["topo"] = torch.as_tensor(matrix, dtype=torch.float32)
            yield item


def _worker_init(_):
    # one BLAS thread per data worker: the cores are shared with training
    threadpool_limits(1)
    torch.set_num_threads(1)


def _check_forward(forward):
    """An mne.Forward from the ``forward`` argument (read if it is a file name)."""
    if isinstance(forward, (str, os.PathLike)):
        path = Path(forward).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"forward: no such file {str(path)!r}; give an mne.Forward or the path "
                "of a -fwd.fif file (mne.write_forward_solution)."
            )
        forward = mne.read_forward_solution(path, verbose=False)
    check_type(forward, mne.Forward, "forward")
    return forward


def _device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@verbose
def train_model(
    forward,
    *,
    init=None,
    library=None,
    n_regions=500,
    parcellation=None,
    steps=3000,
    batch_size=16,
    lr=1e-3,
    sfreq=100.0,
    duration=1.0,
    topomap_size=16,
    topomap_method="rbf",
    net_kwargs=None,
    simulator_kwargs=None,
    forward_weight=0.0,
    laplacian_weight=0.0,
    device="auto",
    seed=0,
    checkpoint_dir=None,
    checkpoint_every=120.0,
    val_samples=32,
    val_every=250,
    patience=8,
    max_time=None,
    num_workers=1,
    verbose=None,
):
    """Train a BrainForge network for a forward model on simulated data.

    Training data are generated on the fly
    (:class:`~mne_brainforge.simulation.EEGSimulator`): TVB spikes on random
    patches, random channel subsets, noise models and SNRs. Progress is shown
    with tqdm (loss, samples/s); a held-out simulated set is evaluated every
    ``val_every`` steps with the benchmark metrics; the best model is kept.

    Parameters
    ----------
    forward : mne.Forward | path-like
        EEG forward model on a surface source space (free orientation is
        converted to cortex-normal), or its ``-fwd.fif`` file; at least 8 EEG
        channels (what inference needs).
    init : BrainForgeModel | None
        Fine-tune this trained model (e.g. :func:`~mne_brainforge.load_pretrained`)
        for ``forward`` instead of starting from random weights: its network,
        parcellation, sampling rate, window and topomap settings are used
        (``n_regions``, ``parcellation``, ``net_kwargs``, ``sfreq``, ``duration``,
        ``topomap_size`` and ``topomap_method`` are then ignored). The forward
        must be on the model's source space.
    library : WaveformLibrary | None
        Source waveforms; None uses the cached default
        (:func:`~mne_brainforge.simulation.fetch_waveform_library`).
        Every tenth spike is held out for the benchmark.
    n_regions : int
        Number of output regions (ignored if ``parcellation`` is given).
    parcellation : Parcellation | None
        Regions of the forward's source space.
    steps : int
        Optimisation steps (batches).
    batch_size : int
        Windows per batch.
    lr : float
        Peak learning rate (AdamW, warm-up then cosine decay).
    sfreq, duration : float
        Sampling rate (Hz) and window length (s) of the network.
    topomap_size : int
        Scalp-map grid size.
    topomap_method : str
        Interpolation (see :func:`~mne_brainforge.nn.topomap_matrix`).
    net_kwargs : dict | None
        Extra arguments of :class:`~mne_brainforge.nn.BrainForgeNet`
        (e.g. ``spatial='mlp'`` or ``temporal='none'`` for ablations).
    simulator_kwargs : dict | None
        Extra arguments of the simulator,
        :class:`~mne_brainforge.simulation.EEGSimulator` (SNR range, noise
        kinds, ...).
    forward_weight, laplacian_weight : float
        Weights of the physics loss terms
        (:class:`~mne_brainforge.training.BrainForgeLoss`).
    device : str
        ``'auto'`` (CUDA if available), ``'cpu'`` or ``'cuda'``.
    seed : int
        Seed of the weights and the data stream: same seed, same model.
    checkpoint_dir : path-like | None
        Where to save a checkpoint every ``checkpoint_every`` seconds and at
        the end; training resumes from it if it exists (same settings, except
        ``steps``, which may be raised to train longer).
    checkpoint_every : float
        Seconds between checkpoints.
    val_samples : int
        Size of the held-out validation set.
    val_every : int
        Steps between validations.
    patience : int
        Stop after this many validations without improvement.
    max_time : float | None
        Stop after this many seconds of training (the best model is returned).
    num_workers : int
        Data-generating worker processes.
    %(verbose)s

    Returns
    -------
    model : BrainForgeModel
        The best model (lowest validation loss); the validation history is in
        ``model.config['training']['history']``.

    See Also
    --------
    mne_brainforge.nn.BrainForgeModel.save
    mne_brainforge.apply_brainforge_inverse
    mne_brainforge.simulation.fetch_waveform_library

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    A network for the template head with another skull conductivity:

    >>> import mne_brainforge as bf
    >>> from mne_brainforge.training import train_model
    >>> fwd = bf.make_fsaverage_forward(info, conductivity=(0.3, 0.0125, 0.3))
    >>> model = train_model(fwd, steps=3000, checkpoint_dir="checkpoints",
    ...                     max_time=3600)
    >>> model.save("my-model.pt")
    >>> stc = bf.apply_brainforge_inverse(evoked, fwd, model="my-model.pt")

    A second call with the same settings and ``checkpoint_dir`` resumes the
    training (here, to train longer):

    >>> model = train_model(fwd, steps=6000, checkpoint_dir="checkpoints")
    """
    from ..simulation.library import fetch_waveform_library

    forward = _check_forward(forward)
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    val_every = check_int(val_every, "val_every", minimum=1)
    val_samples = check_int(val_samples, "val_samples", minimum=1)
    lr = check_number(lr, "lr", minimum=0, strict=True)
    max_time = check_number(
        max_time, "max_time", minimum=0, strict=True, allow_none=True
    )
    device = _device(device)
    forward = cortex_normal(forward)
    _, fwd_names = fixed_orientation_gain(forward)  # MEG-only / volume: clear errors
    if len(fwd_names) < MIN_CHANNELS:
        raise ValueError(
            f"The forward has {len(fwd_names)} EEG channels; a BrainForge model needs "
            f"at least {MIN_CHANNELS} (inference refuses fewer). Compute the forward "
            "for the whole montage (make_fsaverage_forward(info))."
        )
    if init is not None:
        if not isinstance(init, BrainForgeModel):
            raise TypeError(
                f"init must be a BrainForgeModel (e.g. load_pretrained()), got "
                f"{type(init).__name__}."
            )
        n_src = sum(len(s["vertno"]) for s in forward["src"])
        if n_src != init.parcellation.n_sources:
            raise ValueError(
                f"init was trained on {init.parcellation.n_sources} sources, the "
                f"forward has {n_src}: fine-tuning needs the same source space."
            )
        parcellation = init.parcellation
        net_kwargs = {k: v for k, v in init.config["net"].items() if k != "size"}
        topomap_size = init.config["topomap"]["size"]
        topomap_method = init.config["topomap"]["method"]
        sfreq, duration = init.sfreq, init.n_times / init.sfreq
    library = library if library is not None else fetch_waveform_library(verbose=False)
    training_spikes = _training_split(library)
    if parcellation is None:
        parcellation = parcellate_source_space(
            forward["src"], n_regions, seed=seed, verbose=False
        )
    if not isinstance(parcellation, Parcellation):
        raise TypeError("parcellation must be a Parcellation (or None).")
    net_kwargs = dict(size=topomap_size, **(net_kwargs or {}))
    simulator = EEGSimulator(
        forward,
        training_spikes,
        parcellation,
        sfreq=sfreq,
        duration=duration,
        verbose=False,
        **(simulator_kwargs or {}),
    )
    config = dict(
        sfreq=sfreq,
        n_times=simulator.n_times,
        subject=forward["src"]._subject,
        topomap=dict(size=topomap_size, method=topomap_method),
        net=net_kwargs,
        training=dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            forward_weight=forward_weight,
            laplacian_weight=laplacian_weight,
            simulator=simulator_kwargs or {},
            n_channels=len(simulator.ch_names),
            library=array_sha256(training_spikes.spikes)[:16],
        ),
    )

    torch.manual_seed(seed)
    n_threads = max(1, (os.cpu_count() or 1) - num_workers)
    torch.set_num_threads(n_threads)
    net = BrainForgeNet(parcellation.n_regions, **net_kwargs).to(device)
    if init is not None:
        net.load_state_dict(init.net.state_dict())
    region_gain = simulator.gain @ parcellation.region_matrix().toarray()
    criterion = BrainForgeLoss(
        region_gain,
        parcellation.adjacency,
        forward_weight=forward_weight,
        laplacian_weight=laplacian_weight,
    ).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup)
            * 0.5
            * (1 + math.cos(math.pi * min(s, steps) / steps))
        ),
    )
    state = dict(
        step=0,
        best_val=np.inf,
        history=[],
        best_state=None,
        bad_validations=0,
        wall_time_s=0.0,
    )
    ckpt = Path(checkpoint_dir) / _CHECKPOINT if checkpoint_dir else None
    if ckpt is not None and ckpt.is_file():
        state = _resume(ckpt, config, net, optimizer, scheduler)
        logger.info(f"Resumed from {ckpt} at step {state['step']}")

    val_set = _validation_set(
        simulator, val_samples, seed, topomap_size, topomap_method
    )
    evaluator = _Evaluator(forward["src"], parcellation)
    data = SyntheticEEGDataset(simulator, seed=seed, start=state["step"] * batch_size)
    loader = torch.utils.data.DataLoader(
        _WithTopomaps(data, topomap_size, topomap_method),
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,
    )
    model = BrainForgeModel(net, parcellation, config)
    t_start = last_ckpt = time.perf_counter()
    time_before = state["wall_time_s"]  # of the runs this one resumes

    def clock():  # total training time, across resumed runs
        state["wall_time_s"] = time_before + time.perf_counter() - t_start

    bar = tqdm(total=steps, initial=state["step"], desc="training", unit="step")
    with threadpool_limits(n_threads):
        for batch in loader:
            if state["step"] >= steps or state["bad_validations"] >= patience:
                break
            if max_time is not None and time.perf_counter() - t_start > max_time:
                logger.info(f"Stopping: max_time {max_time} s reached")
                break
            net.train()
            batch = {k: v.to(device) for k, v in batch.items()}
            pred = net(batch["eeg"], batch["topo"])
            loss, terms = criterion(pred, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            state["step"] += 1
            elapsed = time.perf_counter() - t_start
            bar.set_postfix(
                loss=f"{loss.item():.4g}",
                samples_s=f"{(bar.n + 1 - bar.initial) * batch_size / elapsed:.0f}",
                refresh=False,
            )
            bar.update()
            if state["step"] % val_every == 0 or state["step"] == steps:
                _validate(model, val_set, criterion, evaluator, state, device)
            if ckpt is not None and time.perf_counter() - last_ckpt > checkpoint_every:
                clock()
                _save_checkpoint(ckpt, config, net, optimizer, scheduler, state)
                last_ckpt = time.perf_counter()
    bar.close()
    if not state["history"] or state["history"][-1]["step"] != state["step"]:
        _validate(model, val_set, criterion, evaluator, state, device)
    clock()
    if ckpt is not None:
        _save_checkpoint(ckpt, config, net, optimizer, scheduler, state)
    net.load_state_dict(state["best_state"])
    model.config["training"].update(
        steps_done=state["step"],
        wall_time_s=round(state["wall_time_s"], 1),
        device=device,
        history=state["history"],
    )
    return model


def _training_split(library):
    """The library's spikes minus every tenth (held out for benchmarks)."""
    keep = np.ones(len(library.spikes), bool)
    keep[::10] = False

    class _Split:
        spikes = library.spikes[keep]
        background = library.background
        sfreq = library.sfreq

    return _Split()


def _validation_set(simulator, n, seed, size, method):
    """Held-out draws (their own seed stream), with their scalp-map matrices."""
    draws = []
    for i in range(n):
        draw = simulator.draw(np.random.default_rng([seed, 999_999, i]))
        topo = masked_topomap_matrix(simulator.ch_pos, draw["mask"], size, method)
        draws.append(dict(draw, topo=topo))
    return draws


class _Evaluator:
    def __init__(self, src, parcellation):
        self.src, self.parcellation = src, parcellation
        self.graph = source_graph(src, verbose=False)

    def __call__(self, pred_regions, draw):
        truth_stc = mne.SourceEstimate(
            draw["source_data"], [s["vertno"] for s in self.src], 0, 1
        )
        truth = metrics.GroundTruth(
            truth_stc,
            [p.sources for p in draw["patches"]],
            [p.centre_index for p in draw["patches"]],
        )
        est = mne.SourceEstimate(
            pred_regions[self.parcellation.labels], truth_stc.vertices, 0, 1
        )
        return dict(
            localization_error=metrics.localization_error(
                est, truth, self.src, self.graph
            ),
            spatial_dispersion=metrics.spatial_dispersion(est, truth, self.src),
            auc=metrics.auc(est, truth, self.src),
        )


@torch.no_grad()
def _validate(model, val_set, criterion, evaluator, state, device):
    net = model.net
    net.eval()
    losses, scores = [], []
    for draw in val_set:
        eeg = torch.as_tensor(draw["eeg"], dtype=torch.float32)[None]
        eeg_scale = eeg.abs().max().clamp_min(1e-30)
        target = torch.as_tensor(draw["target"], dtype=torch.float32)[None]
        target_scale = target.abs().max().clamp_min(1e-30)
        topo = torch.as_tensor(draw["topo"], dtype=torch.float32)[None]
        batch = dict(
            eeg=eeg / eeg_scale,
            target=target / target_scale,
            mask=torch.as_tensor(draw["mask"])[None],
            eeg_scale=eeg_scale[None],
            target_scale=target_scale[None],
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        pred = net(batch["eeg"], topo.to(device))
        losses.append(criterion(pred, batch)[0].item())
        scores.append(evaluator(pred[0].cpu().numpy(), draw))
    record = dict(
        step=state["step"],
        val_loss=float(np.mean(losses)),
        **{k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]},
    )
    state["history"].append(record)
    logger.info("validation " + json.dumps(record))
    if record["val_loss"] < state["best_val"]:
        state["best_val"], state["bad_validations"] = record["val_loss"], 0
        state["best_state"] = {
            k: v.detach().cpu().clone() for k, v in net.state_dict().items()
        }
    else:
        state["bad_validations"] += 1


def _save_checkpoint(path, config, net, optimizer, scheduler, state):
    blob = dict(
        config=json.dumps(config),
        net=net.state_dict(),
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        step=state["step"],
        best_val=float(state["best_val"]),
        history=json.dumps(state["history"]),
        best_state=state["best_state"],
        bad_validations=state["bad_validations"],
        wall_time_s=float(state["wall_time_s"]),
    )
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def _comparable(config):
    """The settings a resumed run must share (``steps`` may grow: train longer)."""
    return dict(
        config, training={k: v for k, v in config["training"].items() if k != "steps"}
    )


def _resume(path, config, net, optimizer, scheduler):
    blob = torch.load(path, map_location="cpu", weights_only=True)
    saved, current = json.loads(blob["config"]), json.loads(json.dumps(config))
    if (
        saved["training"].get("library") is None
    ):  # made before the spikes' digest was kept
        saved["training"]["library"] = current["training"]["library"]
    if _comparable(saved) != _comparable(current):
        raise ValueError(
            f"The checkpoint {path} was made with other settings; use another "
            "checkpoint_dir or delete it to start afresh."
        )
    net.load_state_dict(blob["net"])
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    return dict(
        step=int(blob["step"]),
        best_val=float(blob["best_val"]),
        history=json.loads(blob["history"]),
        best_state=blob["best_state"],
        bad_validations=int(blob["bad_validations"]),
        wall_time_s=float(blob.get("wall_time_s", 0.0)),
    )
