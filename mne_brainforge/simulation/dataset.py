"""On-the-fly training data: one simulated EEG window per draw, for any forward."""

import mne
import numpy as np
import torch
from mne.utils import logger, verbose

from ..head.forward import fixed_orientation_gain
from ..head.parcellation import Parcellation, parcellate_source_space
from ..utils import resample
from .patches import random_patches
from .synthesis import (
    NOISE_KINDS,
    add_noise_at_snr,
    average_reference,
    check_snr_range,
    make_noise,
)

# Peak dipole moment of one source at a patch centre (A·m): ~0.5 nA·m/mm^2 of
# cortex over the ~20 mm^2 a source of an ico5 source space stands for.
SOURCE_MOMENT = 10e-9
# Random cortical sources mixed into spatially coloured ("brain") noise
_N_NOISE_SOURCES = 64


class EEGSimulator:
    """Draw simulated EEG windows with known sources through a forward model.

    Each draw: 1..``max_sources`` patches grown on the parcellation, each driven
    by a random spike of the waveform library at a random latency and amplitude,
    projected through the fixed-orientation gain ``L``, a random subset of
    channels kept, a per-channel gain perturbation applied, noise of a random
    kind added at a random SNR (see :mod:`mne_brainforge.simulation.synthesis`
    for the SNR definition), everything average-referenced over the channels
    kept.

    Parameters
    ----------
    fwd : mne.Forward
        Fixed-orientation EEG forward on a surface source space.
    library : WaveformLibrary
        Source waveforms (``spikes``, ``background``, ``sfreq``).
    parcellation : Parcellation | int
        Regions of ``fwd['src']``, or a number of regions to parcellate into.
    sfreq : float
        Sampling rate of the windows (Hz).
    duration : float
        Window length (s).
    max_sources : int
        Largest number of simultaneous patches.
    min_separation : float
        Smallest distance between patch seeds (m).
    snr_range : tuple of float | None
        SNR range in dB, drawn uniformly; None for noise-free data.
    noise_kinds : tuple of str
        Noise models drawn from, uniformly (see
        :func:`~mne_brainforge.simulation.make_noise`).
    n_channels_range : tuple of int
        Range of the number of channels kept (clipped to the montage).
    gain_sigma : float
        Standard deviation of the multiplicative per-channel gain error.
    amplitude_range : tuple of float
        Range of each source's amplitude factor (log-uniform).
    line_freq : float
        Power-line frequency for ``'line'`` noise.
    verbose : bool | str | int | None
        Control verbosity of the logging output (see :func:`mne.verbose`);
        None for the default level.

    See Also
    --------
    SyntheticEEGDataset, mne_brainforge.training.train_model

    Notes
    -----
    How the pieces fit together: :doc:`/simulation`.

    Examples
    --------
    >>> import mne
    >>> import numpy as np
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.simulation import EEGSimulator, fetch_waveform_library
    >>> fwd = bf.make_fsaverage_forward(info)
    >>> fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True)
    >>> simulator = EEGSimulator(fwd, fetch_waveform_library(), 500, sfreq=100.0)
    >>> sample = simulator.draw(np.random.default_rng(0), snr_db=10.0)
    >>> sample["eeg"].shape, sample["target"].shape  # for a 64-channel info
    ((64, 100), (500, 100))
    """

    @verbose
    def __init__(
        self,
        fwd,
        library,
        parcellation=500,
        *,
        sfreq=250.0,
        duration=1.0,
        max_sources=3,
        min_separation=0.03,
        snr_range=(0.0, 30.0),
        noise_kinds=NOISE_KINDS,
        n_channels_range=(16, 128),
        gain_sigma=0.05,
        amplitude_range=(0.5, 2.0),
        line_freq=50.0,
        verbose=None,
    ):
        self.gain, self.ch_names = fixed_orientation_gain(fwd)
        picks = mne.pick_channels(fwd["info"]["ch_names"], self.ch_names, ordered=True)
        self.ch_pos = np.array([fwd["info"]["chs"][p]["loc"][:3] for p in picks])
        if not isinstance(parcellation, Parcellation):
            parcellation = parcellate_source_space(
                fwd["src"], parcellation, verbose=False
            )
        if parcellation.n_sources != self.gain.shape[1]:
            raise ValueError(
                f"The parcellation has {parcellation.n_sources} sources, the forward "
                f"{self.gain.shape[1]}: parcellate this forward's source space."
            )
        self.parcellation = parcellation
        self.region_matrix = parcellation.region_matrix(normalize=True).T.tocsr()
        self.sfreq, self.n_times = float(sfreq), int(round(duration * sfreq))
        if self.n_times < 2:
            raise ValueError(
                f"duration * sfreq must give >= 2 samples, got {self.n_times}."
            )
        self.max_sources, self.min_separation = int(max_sources), float(min_separation)
        self.snr_range = None if snr_range is None else check_snr_range(snr_range)
        bad = set(noise_kinds) - set(NOISE_KINDS)
        if bad or not noise_kinds:
            raise ValueError(
                f"noise_kinds must be among {NOISE_KINDS}, got {noise_kinds}."
            )
        self.noise_kinds = tuple(noise_kinds)
        if "line" in self.noise_kinds and line_freq >= sfreq / 2:
            # data resampled this low were low-passed below the line frequency
            logger.info(
                f"No line noise: {line_freq:g} Hz is above Nyquist at {sfreq:g} Hz"
            )
            self.noise_kinds = tuple(k for k in self.noise_kinds if k != "line") or (
                "white",
            )
        lo, hi = (int(v) for v in n_channels_range)
        n_ch = len(self.ch_names)
        if not 1 <= lo <= hi:
            raise ValueError(
                f"n_channels_range must be 1 <= low <= high, got {n_channels_range}."
            )
        self.n_channels_range = (min(lo, n_ch), min(hi, n_ch))
        self.gain_sigma, self.amplitude_range = (
            float(gain_sigma),
            tuple(amplitude_range),
        )
        self.line_freq = float(line_freq)
        self.spikes = resample(library.spikes, library.sfreq, self.sfreq)
        self.spikes /= np.abs(self.spikes).max(axis=1, keepdims=True)
        self.background = resample(library.background, library.sfreq, self.sfreq)
        logger.info(
            f"EEG simulator: {n_ch} channels, {parcellation.n_regions} regions, "
            f"{len(self.spikes)} spikes, {self.n_times} samples at {self.sfreq:g} Hz"
        )

    def _waveform(self, rng):
        """One spike at a random latency (its peak inside the window), unit peak."""
        spike = self.spikes[rng.integers(len(self.spikes))]
        peak = int(np.argmax(np.abs(spike)))
        out = np.zeros(self.n_times)
        at = rng.integers(self.n_times)  # where the peak lands
        start = at - peak
        lo, hi = max(start, 0), min(start + len(spike), self.n_times)
        out[lo:hi] = spike[lo - start : hi - start]
        return out

    def _channel_subset(self, n_keep, rng):
        """Mask of ``n_keep`` channels: half the draws evenly spread, half at random.

        Real caps with few channels cover the head evenly, which uniform random
        subsets of a dense montage rarely do; random subsets stand for bad or
        missing channels. Spread subsets are farthest-point samples from a
        random first channel, with positions jittered so they vary.
        """
        n_ch = len(self.ch_names)
        mask = np.zeros(n_ch, bool)
        if n_keep >= n_ch or rng.random() < 0.5:
            mask[rng.choice(n_ch, n_keep, replace=False)] = True
            return mask
        pos = self.ch_pos + rng.normal(0, 0.005, self.ch_pos.shape)
        chosen = [rng.integers(n_ch)]
        dist = np.linalg.norm(pos - pos[chosen[0]], axis=1)
        for _ in range(n_keep - 1):
            chosen.append(int(np.argmax(dist)))
            dist = np.minimum(dist, np.linalg.norm(pos - pos[chosen[-1]], axis=1))
        mask[chosen] = True
        return mask

    def _brain_noise(self, rng):
        """Background activity of random cortical sources (spatially coloured)."""
        sources = rng.choice(self.gain.shape[1], _N_NOISE_SOURCES, replace=False)
        if len(self.background) and self.background.shape[1] >= self.n_times:
            rows = rng.integers(len(self.background), size=_N_NOISE_SOURCES)
            start = rng.integers(self.background.shape[1] - self.n_times + 1)
            drive = self.background[rows, start : start + self.n_times]
            drive = drive - drive.mean(1, keepdims=True)
            drive /= drive.std(1, keepdims=True) + 1e-30
            return self.gain[:, sources] @ drive
        return make_noise(
            "spatial",
            len(self.ch_names),
            self.n_times,
            self.sfreq,
            rng,
            mixing=self.gain[:, sources],
        )

    def draw(self, rng, *, snr_db="random", n_sources=None, noise_kind=None):
        """Simulate one window.

        Parameters
        ----------
        rng : numpy.random.Generator
            Random generator (all randomness of the draw comes from it).
        snr_db : float | None | 'random'
            SNR in dB; None for no noise; 'random' draws from ``snr_range``.
        n_sources : int | None
            Number of patches; None draws from 1..``max_sources``.
        noise_kind : str | None
            Noise model; None draws one from ``noise_kinds``.

        Returns
        -------
        sample : dict
            ``eeg`` (n_channels, n_times) in V, average-referenced, zero on
            channels not kept; ``mask`` (n_channels,) bool, channels kept;
            ``target`` (n_regions, n_times) region time courses (mean source
            moment over each region, A·m); ``source_data`` (n_sources_total,
            n_times) the moments J; ``signal`` the noise-free part of ``eeg``
            (``L J`` with the channel gain error, referenced); ``patches``; ``snr_db``; ``noise_kind``.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> sample = simulator.draw(rng, n_sources=2, snr_db=5.0, noise_kind="pink")
        >>> len(sample["patches"]), sample["noise_kind"]
        (2, 'pink')
        >>> clean = simulator.draw(rng, snr_db=None)  # no noise
        """
        patches = random_patches(
            self.parcellation,
            n_sources,
            max_sources=self.max_sources,
            min_separation=self.min_separation,
            rng=rng,
        )
        J = np.zeros((self.gain.shape[1], self.n_times))
        lo, hi = np.log(self.amplitude_range[0]), np.log(self.amplitude_range[1])
        for patch in patches:
            amplitude = SOURCE_MOMENT * np.exp(rng.uniform(lo, hi))
            J[patch.sources] += np.outer(patch.weights * amplitude, self._waveform(rng))
        active = np.unique(np.concatenate([p.sources for p in patches]))
        clean = self.gain[:, active] @ J[active]

        n_ch = len(self.ch_names)
        n_keep = rng.integers(self.n_channels_range[0], self.n_channels_range[1] + 1)
        mask = self._channel_subset(n_keep, rng)
        perturbed = clean * (1 + self.gain_sigma * rng.standard_normal((n_ch, 1)))

        if snr_db == "random":
            snr_db = None if self.snr_range is None else rng.uniform(*self.snr_range)
        noise = None
        if snr_db is not None:
            noise_kind = (
                noise_kind or self.noise_kinds[rng.integers(len(self.noise_kinds))]
            )
            if noise_kind == "spatial":
                noise = self._brain_noise(rng)
            else:
                noise = make_noise(
                    noise_kind,
                    n_ch,
                    self.n_times,
                    self.sfreq,
                    rng,
                    line_freq=self.line_freq,
                )
        eeg = add_noise_at_snr(perturbed, noise, snr_db, mask)
        return dict(
            eeg=eeg,
            mask=mask,
            target=self.region_matrix @ J,
            source_data=J,
            signal=average_reference(perturbed, mask),
            patches=patches,
            snr_db=snr_db,
            noise_kind=noise_kind if snr_db is not None else None,
        )


class SyntheticEEGDataset(torch.utils.data.IterableDataset):
    """A torch dataset of simulated EEG windows, generated on the fly.

    Sample ``i`` is drawn from its own generator seeded with ``(seed, epoch,
    i)``, so the data are reproducible from the seed, identical whatever the
    number of DataLoader workers, and never duplicated across workers (worker
    ``w`` of ``W`` yields samples ``w, w + W, w + 2W, ...``).

    Parameters
    ----------
    simulator : EEGSimulator
        What draws each window.
    n_samples : int | None
        Samples per epoch; None for an endless stream.
    seed : int
        Seed of the whole stream.
    start : int
        Index of the first sample (e.g. to resume a stream).

    Notes
    -----
    ``eeg`` (V) and ``target`` (A·m) are divided by their per-sample maximum
    magnitudes, so a network sees unit-scale inputs and targets; the factors are
    returned. Each item is a dict of tensors: ``eeg`` (n_channels, n_times) float32,
    ``mask`` (n_channels,) bool (channels kept), ``target`` (n_regions,
    n_times) float32, ``eeg_scale``, ``target_scale``, ``snr_db`` (NaN if
    noise-free), ``n_sources``, ``index``. Channel positions (head
    coordinates, m) are ``dataset.ch_pos``, the same for every item.

    See the tutorial :ref:`sphx_glr_auto_tutorials_02_train_your_own.py` for
    training on such data with :func:`mne_brainforge.training.train_model`.

    Examples
    --------
    >>> import torch
    >>> from mne_brainforge.simulation import SyntheticEEGDataset
    >>> dataset = SyntheticEEGDataset(simulator, n_samples=64, seed=0)
    >>> loader = torch.utils.data.DataLoader(dataset, batch_size=16)
    >>> batch = next(iter(loader))
    >>> batch["eeg"].shape  # (batch, n_channels, n_times)
    torch.Size([16, 64, 100])
    """

    def __init__(self, simulator, *, n_samples=None, seed=0, start=0):
        super().__init__()
        self.simulator, self.start = simulator, int(start)
        self.n_samples = None if n_samples is None else int(n_samples)
        self.seed = int(seed)
        self.epoch = 0

    @property
    def ch_pos(self):
        """Channel positions (n_channels, 3), head coordinates in metres.

        Examples
        --------
        >>> topo = model.topomap(dataset.ch_pos)  # the same for every item
        """
        return self.simulator.ch_pos

    def set_epoch(self, epoch):
        """Draw a different (reproducible) set of samples for another epoch.

        Parameters
        ----------
        epoch : int
            The epoch: sample ``i`` is drawn with the seed ``(seed, epoch, i)``.

        Examples
        --------
        >>> for epoch in range(3):
        ...     dataset.set_epoch(epoch)
        ...     for batch in loader:
        ...         pass
        """
        self.epoch = int(epoch)

    def __len__(self):
        if self.n_samples is None:
            raise TypeError(
                "An endless SyntheticEEGDataset (n_samples=None) has no length."
            )
        return max(0, self.n_samples - self.start)

    def sample(self, index):
        """Return item ``index`` (deterministic), as a dict of tensors.

        Parameters
        ----------
        index : int
            The sample's index in the stream (with ``seed`` and the current
            epoch, it fixes the random draw).

        Returns
        -------
        item : dict of str -> torch.Tensor
            The item, see the Notes of :class:`SyntheticEEGDataset`.

        Examples
        --------
        >>> item = dataset.sample(3)
        >>> sorted(item)  # doctest: +NORMALIZE_WHITESPACE
        ['eeg', 'eeg_scale', 'index', 'mask', 'n_sources', 'snr_db', 'target',
         'target_scale']
        """
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        draw = self.simulator.draw(rng)
        eeg_scale = np.abs(draw["eeg"]).max() or 1.0
        target_scale = np.abs(draw["target"]).max() or 1.0
        return dict(
            eeg=torch.as_tensor(draw["eeg"] / eeg_scale, dtype=torch.float32),
            mask=torch.as_tensor(draw["mask"]),
            target=torch.as_tensor(draw["target"] / target_scale, dtype=torch.float32),
            eeg_scale=torch.tensor(eeg_scale, dtype=torch.float64),
            target_scale=torch.tensor(target_scale, dtype=torch.float64),
            snr_db=torch.tensor(np.nan if draw["snr_db"] is None else draw["snr_db"]),
            n_sources=torch.tensor(len(draw["patches"])),
            index=torch.tensor(int(index)),
        )

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        index = self.start + worker
        while self.n_samples is None or index < self.n_samples:
            yield self.sample(index)
            index += n_workers
