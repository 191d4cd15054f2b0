"""Source waveform families as one torch bank that a batched generator samples.

Every waveform of the bank is ``2 * n_times`` samples long, unit peak
magnitude; a draw takes a random ``n_times`` slice of it, a slice that
holds the waveform's peak, so a transient centred at sample ``n_times``
(spikes, ERPs, bursts) lands anywhere in the window and a stationary one
(rhythms, background) starts at a random phase.

Families (:data:`WAVEFORM_FAMILIES`):

- ``'spike'``: interictal-like spikes of the TVB Jansen-Rit waveform library
  (:func:`~mne_brainforge.simulation.fetch_waveform_library`), resampled with
  :func:`mne.filter.resample`.
- ``'rhythmic'``: periodic spike(-wave) discharges at 2.5-4 Hz, ictal-like:
  TVB Jansen-Rit networks in the rhythmic regime of
  :data:`~mne_brainforge.simulation.neural_mass.JANSEN_RIT_REGIMES`
  (excitatory gain A 3.7-4.2 mV, low input).
- ``'erp'``: 2-3 Gaussian components of random sign, latency (20-400 ms after
  onset) and width (10-60 ms), like evoked responses.
- ``'burst'``: Gaussian-windowed oscillations (4-30 Hz, 100-400 ms).
- ``'alpha'``: 10-11 Hz oscillations, TVB Jansen-Rit networks in their alpha
  regime (the physiological gain A = 3.25 mV at a higher input).
- ``'background'``: background segments of the TVB library (Jansen-Rit
  regions in their noisy steady state); segments shorter than two windows
  are extended by their mirror image.
"""

from dataclasses import dataclass

import numpy as np
import torch
from mne.filter import resample
from mne.utils import logger, verbose

from ..utils import array_sha256, cached_file, check_int, check_number, get_data_path
from .neural_mass import JANSEN_RIT_REGIMES, simulate_regimes

#: Waveform families of :func:`make_waveform_bank`.
WAVEFORM_FAMILIES = ("spike", "rhythmic", "erp", "burst", "alpha", "background")
_BANK_REVISION = 2


@dataclass
class WaveformBank:
    """A bank of source waveforms, grouped by family, ready for batched draws.

    Attributes
    ----------
    waveforms : torch.Tensor, shape (n_waveforms, 2 * n_times), float32
        Unit-peak waveforms, sorted by family.
    family : torch.Tensor of int64, shape (n_waveforms,)
        Index of each waveform's family in ``families``.
    families : tuple of str
        Family names.
    sfreq : float
        Sampling rate (Hz).
    n_times : int
        Length of the windows drawn (half the waveforms' length).
    """

    waveforms: torch.Tensor
    family: torch.Tensor
    families: tuple
    sfreq: float
    n_times: int

    def __post_init__(self):
        if self.waveforms.shape[1] != 2 * self.n_times:
            raise ValueError(
                f"Waveforms must be 2 * n_times = {2 * self.n_times} samples long, "
                f"got {self.waveforms.shape[1]}."
            )
        counts = torch.bincount(self.family, minlength=len(self.families))
        if torch.any(counts == 0) or torch.any(self.family[1:] < self.family[:-1]):
            raise ValueError("Every family needs waveforms, sorted by family.")
        self.start = torch.cumsum(counts, 0) - counts
        self.count = counts
        # slices keep each waveform's peak: start offsets peak - n_times + 1 .. peak
        peak = self.waveforms.abs().argmax(1)
        self.first_offset = (peak - self.n_times + 1).clamp_min(0)
        self.n_offsets = peak.clamp_max(self.n_times) - self.first_offset + 1

    def __repr__(self):
        counts = ", ".join(f"{f}: {int(c)}" for f, c in zip(self.families, self.count))
        return (
            f"<WaveformBank: {counts}; windows of {self.n_times} samples at "
            f"{self.sfreq:g} Hz>"
        )

    def to(self, device):
        """Copy of the bank on ``device``."""
        return WaveformBank(
            self.waveforms.to(device),
            self.family.to(device),
            self.families,
            self.sfreq,
            self.n_times,
        )

    def random_offsets(self, index, uniform):
        """Start samples of slices that contain the peak of waveforms ``index``.

        Parameters
        ----------
        index : torch.Tensor of int64
            Waveforms.
        uniform : torch.Tensor
            Uniform numbers in [0, 1) of the same shape (the randomness).

        Returns
        -------
        offset : torch.Tensor of int64
            Offsets, uniform over those whose slice holds the waveform's peak
            (a transient lands anywhere in the window, never outside it).
        """
        n = self.n_offsets[index]
        return self.first_offset[index] + (uniform * n).long().clamp_max(n - 1)

    def windows(self, index, offset):
        """Slices ``offset : offset + n_times`` of the waveforms ``index``.

        Parameters
        ----------
        index, offset : torch.Tensor of int64, shape (...)
            Waveforms and start samples (``0 <= offset <= n_times``).

        Returns
        -------
        windows : torch.Tensor, shape (..., n_times)
        """
        time = offset[..., None] + torch.arange(self.n_times, device=offset.device)
        return self.waveforms[index[..., None], time]

    def save(self, fname):
        """Write the bank to an ``.npz`` file (or an open binary file)."""
        np.savez(
            fname,
            waveforms=self.waveforms.cpu().numpy(),
            family=self.family.cpu().numpy(),
            families=np.array(self.families),
            sfreq=self.sfreq,
            n_times=self.n_times,
        )

    @classmethod
    def load(cls, fname):
        """Read a bank written by :meth:`save`."""
        with np.load(fname) as data:
            return cls(
                torch.from_numpy(data["waveforms"]),
                torch.from_numpy(data["family"]),
                tuple(str(f) for f in data["families"]),
                float(data["sfreq"]),
                int(data["n_times"]),
            )


def _unit(x):
    return x / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-30)


def _resampled(signals, sfreq_from, sfreq_to):
    signals = np.asarray(signals, np.float64)
    if np.isclose(sfreq_from, sfreq_to):
        return signals
    return resample(signals, up=sfreq_to, down=sfreq_from, axis=-1, verbose=False)


def _centred(spikes, length):
    """Spikes (n, m) placed in (n, length) rows with their peak at length // 2."""
    out = np.zeros((len(spikes), length))
    peaks = np.argmax(np.abs(spikes), axis=1)
    for row, spike, peak in zip(out, spikes, peaks):
        start = length // 2 - peak
        lo, hi = max(start, 0), min(start + spike.shape[0], length)
        row[lo:hi] = spike[lo - start : hi - start]
    return out


def _erps(n, length, sfreq, rng):
    t = (np.arange(length) - length // 2) / sfreq  # onset at the centre
    out = np.zeros((n, length))
    for row in out:
        for _ in range(rng.integers(2, 4)):
            latency, width = rng.uniform(0.02, 0.4), rng.uniform(0.01, 0.06)
            sign = rng.choice([-1.0, 1.0])
            row += (
                sign
                * rng.uniform(0.3, 1.0)
                * np.exp(-0.5 * ((t - latency) / width) ** 2)
            )
    return out


def _bursts(n, length, sfreq, rng):
    t = (np.arange(length) - length // 2) / sfreq
    freq = rng.uniform(4.0, min(30.0, 0.4 * sfreq), (n, 1))
    width = rng.uniform(0.1, 0.4, (n, 1)) / 2.355  # FWHM -> SD
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    return np.exp(-0.5 * (t / width) ** 2) * np.sin(2 * np.pi * freq * t + phase)


def _random_windows(signals, n, length, rng):
    """``n`` random ``length``-sample slices of the rows of ``signals``, mean removed.

    Rows shorter than ``length`` are extended by their mirror image (continuous
    at the seam, no jump).
    """
    if 2 * signals.shape[1] < length:
        raise ValueError(
            f"Segments of {signals.shape[1]} samples are shorter than a window "
            f"({length // 2} samples)."
        )
    if signals.shape[1] < length:
        signals = np.concatenate([signals, signals[:, ::-1]], axis=1)
    rows = rng.integers(len(signals), size=n)
    starts = rng.integers(signals.shape[1] - length + 1, size=n)
    segments = signals[rows[:, None], starts[:, None] + np.arange(length)]
    return segments - segments.mean(axis=1, keepdims=True)


def make_waveform_bank(
    library,
    *,
    sfreq=100.0,
    n_times=100,
    n_per_family=500,
    families=None,
    regimes=None,
    seed=0,
):
    """Build a :class:`WaveformBank` from a TVB waveform library.

    Parameters
    ----------
    library : WaveformLibrary
        The TVB library (``spikes``, ``background``, ``sfreq``), e.g.
        :func:`~mne_brainforge.simulation.fetch_waveform_library`.
    sfreq : float
        Sampling rate of the bank (Hz).
    n_times : int
        Window length (samples); waveforms are twice as long.
    n_per_family : int
        Waveforms of each family but ``'spike'`` (which keeps every library
        spike).
    families : sequence of str | None
        Families to include (:data:`WAVEFORM_FAMILIES`); None for all.
    regimes : dict of str -> ndarray | None
        The TVB regimes' waveforms of ``'rhythmic'`` and ``'alpha'``, sampled at
        ``library.sfreq``, as
        :func:`~mne_brainforge.simulation.neural_mass.simulate_regimes` returns
        them (each at least one window long); None simulates them when those
        families are asked for (tens of seconds on two cores).
    seed : int
        Seed of the draws (and of the regimes' simulation).

    Returns
    -------
    bank : WaveformBank
        The bank (CPU tensors).

    Examples
    --------
    >>> from mne_brainforge.simulation import fetch_waveform_library
    >>> bank = make_waveform_bank(fetch_waveform_library(), sfreq=100.0, n_times=100)
    """
    sfreq = check_number(sfreq, "sfreq", minimum=0, strict=True)
    n_times = check_int(n_times, "n_times", minimum=2)
    n_per_family = check_int(n_per_family, "n_per_family", minimum=1)
    families = WAVEFORM_FAMILIES if families is None else tuple(families)
    bad = sorted(set(families) - set(WAVEFORM_FAMILIES))
    if bad or not families:
        raise ValueError(f"families must be among {WAVEFORM_FAMILIES}, got {families}.")
    rng = np.random.default_rng(seed)
    length = 2 * n_times
    needed = [name for name in JANSEN_RIT_REGIMES if name in families]
    if regimes is None and needed:
        regimes = simulate_regimes(
            needed,
            duration=2.0 + length / sfreq,  # 1 s start-up, a window, 1 s spare
            sfreq=library.sfreq,
            seed=seed,
        )
    missing = sorted(set(needed) - set(regimes or {}))
    if missing:
        raise ValueError(f"regimes lacks the waveforms of {missing}.")

    def tvb(signals):
        signals = _resampled(signals, library.sfreq, sfreq)
        return _random_windows(signals, n_per_family, length, rng)

    spikes = _unit(_resampled(library.spikes, library.sfreq, sfreq))
    build = {
        "spike": lambda: _centred(spikes, length),
        "rhythmic": lambda: tvb(regimes["rhythmic"]),
        "erp": lambda: _erps(n_per_family, length, sfreq, rng),
        "burst": lambda: _bursts(n_per_family, length, sfreq, rng),
        "alpha": lambda: tvb(regimes["alpha"]),
        "background": lambda: tvb(library.background),
    }
    waves = [_unit(build[name]()) for name in families]
    return WaveformBank(
        torch.as_tensor(np.concatenate(waves), dtype=torch.float32),
        torch.as_tensor(np.repeat(np.arange(len(waves)), [len(w) for w in waves])),
        families,
        float(sfreq),
        n_times,
    )


@verbose
def fetch_waveform_bank(
    library=None, *, sfreq=100.0, n_times=100, n_per_family=500, seed=0, verbose=None
):
    """:func:`make_waveform_bank` of all families, cached under ``get_data_path()``.

    Parameters
    ----------
    library : WaveformLibrary | None
        The TVB library; None for
        :func:`~mne_brainforge.simulation.fetch_waveform_library` (built on
        first use: minutes).
    sfreq, n_times, n_per_family, seed
        See :func:`make_waveform_bank`.
    verbose : bool | str | int | None
        Control verbosity of the logging output (see :func:`mne.verbose`).

    Returns
    -------
    bank : WaveformBank
        The bank (a few MB), keyed in the cache by the library's content and
        the arguments.

    Examples
    --------
    >>> from mne_brainforge.simulation import fetch_waveform_bank
    >>> bank = fetch_waveform_bank(sfreq=100.0, n_times=100)
    """
    if library is None:
        from .library import fetch_waveform_library

        library = fetch_waveform_library()
    key = array_sha256(np.asarray(library.spikes, np.float32))[:16]
    name = (
        f"waveform_bank-{key}-{sfreq:g}Hz-{n_times}-{n_per_family}-{seed}"
        f"-r{_BANK_REVISION}.npz"
    )
    path = get_data_path() / "waveform_banks" / name

    def _write(tmp):
        logger.info(f"Building the waveform bank {path}")
        bank = make_waveform_bank(
            library, sfreq=sfreq, n_times=n_times, n_per_family=n_per_family, seed=seed
        )
        with open(tmp, "wb") as fid:
            bank.save(fid)

    cached_file(path, _write)
    return WaveformBank.load(path)
