"""A forward-independent library of simulated spike and background waveforms.

The library holds region-level waveforms (mV, relative to the resting level)
extracted from Jansen-Rit network simulations (see
:mod:`mne_brainforge.simulation.neural_mass`): interictal-spike-like
discharges of a hyperexcitable region, isolated from the activity of every
other region, and spike-free background segments. It does not depend on a
head model, so it is built once (minutes), cached in one compressed ``.npz``
file of a few MB, and reused to synthesise training data for any montage.
"""

import functools
import json
import os
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose

from ..utils import array_sha256, atomic_path
from .neural_mass import (
    DEFAULT_CONNECTIVITY,
    DEFAULT_COUPLING,
    _check_settings,
    load_connectivity,
    simulate_many,
)
from .spikes import extract_background, extract_spikes

__all__ = [
    "DEFAULT_SETTINGS",
    "WaveformLibrary",
    "build_waveform_library",
    "fetch_waveform_library",
    "read_waveform_library",
]

FORMAT = "mne-brainforge-waveform-library"
FORMAT_VERSION = 1
# Bump when the simulation or extraction code changes what a given set of
# arguments produces: cached libraries of another revision are rebuilt.
LIBRARY_REVISION = 1
DEFAULT_FNAME = "waveform_library.npz"

#: Default (mu, noise) settings of :func:`build_waveform_library`: the corner
#: of the Jansen-Rit parameter space (with A = 3.5 mV in the target region,
#: 3.25 mV elsewhere, coupling 0.1) where the target region fires sporadic
#: spikes (about 0.5 to 2 per second) while the other regions stay in their
#: noisy steady state. Higher mu or noise make the other regions spike too (few
#: isolated spikes survive); lower make spikes rare.
DEFAULT_SETTINGS = ((0.085, 1.0), (0.09, 0.75), (0.09, 1.0), (0.095, 0.75))

#: Default keyword arguments of :func:`build_waveform_library` that define the
#: content of the library (the cached library is rebuilt if they change).
DEFAULT_BUILD = dict(
    connectivity=DEFAULT_CONNECTIVITY,
    settings=DEFAULT_SETTINGS,
    duration=10.0,
    dt=1e-3,
    sfreq=500.0,
    coupling_strength=DEFAULT_COUPLING,
    a_target=3.5,
    a_other=3.25,
    transient=1.0,
    window=(-0.2, 0.3),
    threshold=8.0,
    isolation=6.0,
    min_distance=0.1,
    background_length=1.0,
    background_threshold=6.0,
    n_background=4,
    seed=0,
)

# name -> dtype of every array of the library, in file order
_ARRAYS = {
    "spikes": np.float32,
    "spike_region": np.int32,
    "spike_setting": np.int32,
    "spike_seed": np.int64,
    "spike_time": np.float64,
    "background": np.float32,
    "background_region": np.int32,
    "background_target": np.int32,
    "background_setting": np.int32,
    "background_seed": np.int64,
    "background_time": np.float64,
}
_SPIKE_META = ("spike_region", "spike_setting", "spike_seed", "spike_time")
_BG_META = (
    "background_region",
    "background_target",
    "background_setting",
    "background_seed",
    "background_time",
)
_META_KEY = "__meta__"


def _jsonable(obj):
    """Round-trip through JSON (tuples become lists; checks serialisability)."""
    return json.loads(json.dumps(obj))


def _rebuild_hint(fname):
    return (
        f"Delete {fname} and rebuild it: for the cached default library run "
        "mne_brainforge.simulation.library.fetch_waveform_library(rebuild=True); "
        "for another file, build_waveform_library(...).save(fname, overwrite=True)."
    )


def _corrupt(fname, reason):
    return OSError(
        f"The waveform library {fname} is corrupt or incomplete ({reason}). "
        + _rebuild_hint(fname)
    )


@dataclass(eq=False)
class WaveformLibrary:
    """Spike and background waveforms extracted from neural-mass simulations.

    Parameters
    ----------
    spikes : array, shape (n_spikes, n_times)
        Spike waveforms in mV relative to the region's resting level (median),
        peak at sample ``round(-tmin * sfreq)``.
    spike_region, spike_setting, spike_seed : array of int, shape (n_spikes,)
        The target region of the simulation the spike comes from (the region
        that spiked), the index of its (mu, noise) setting in
        ``info["settings"]``, and its seed.
    spike_time : array, shape (n_spikes,)
        Peak time in seconds from the start of the simulation.
    background : array, shape (n_background, n_times_background)
        Spike-free background segments in mV relative to the resting level.
    background_region, background_target : array of int, shape (n_background,)
        The region each segment comes from, the target (hyperexcitable) region
        of its simulation.
    background_setting, background_seed : array of int, shape (n_background,)
        The setting index and the seed of the simulation.
    background_time : array, shape (n_background,)
        Onset of each segment in seconds from the start of the simulation.
    sfreq : float
        Sampling rate of all waveforms in Hz.
    tmin : float
        Time of the first spike sample relative to the peak, in seconds.
    info : dict
        JSON-serialisable description of how the library was built
        (connectome, settings, simulation and extraction parameters, counts,
        timings, package versions).

    See Also
    --------
    fetch_waveform_library, build_waveform_library, read_waveform_library

    Notes
    -----
    Made by :func:`build_waveform_library` (or read from a file), not usually
    built directly. How the library is used: :doc:`/simulation`; see also the
    tutorial :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    >>> from mne_brainforge.simulation import fetch_waveform_library
    >>> library = fetch_waveform_library()
    >>> library.spikes.shape  # (n_spikes, n_times), mV
    (1697, 251)
    >>> library.sfreq, library.tmin  # Hz, s (the spikes peak at 0 s)
    (500.0, -0.2)
    >>> library.background.shape  # 1 s segments
    (1216, 500)
    """

    spikes: np.ndarray
    spike_region: np.ndarray
    spike_setting: np.ndarray
    spike_seed: np.ndarray
    spike_time: np.ndarray
    background: np.ndarray
    background_region: np.ndarray
    background_target: np.ndarray
    background_setting: np.ndarray
    background_seed: np.ndarray
    background_time: np.ndarray
    sfreq: float
    tmin: float
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, dtype in _ARRAYS.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        for name in ("spikes", "background"):
            if getattr(self, name).ndim != 2:
                raise ValueError(
                    f"{name} must be 2D (n_waveforms, n_times), got shape "
                    f"{getattr(self, name).shape}."
                )
        for main, metas in (("spikes", _SPIKE_META), ("background", _BG_META)):
            n = len(getattr(self, main))
            for name in metas:
                arr = getattr(self, name)
                if arr.shape != (n,):
                    raise ValueError(
                        f"{name} must have shape ({n},) like {main}, got {arr.shape}."
                    )
        self.sfreq = float(self.sfreq)
        if not np.isfinite(self.sfreq) or self.sfreq <= 0:
            raise ValueError(f"sfreq must be positive, got {self.sfreq}.")
        self.tmin = float(self.tmin)
        if not np.isfinite(self.tmin) or self.tmin > 0:
            raise ValueError(f"tmin must be <= 0 seconds, got {self.tmin}.")
        if not isinstance(self.info, dict):
            raise TypeError(f"info must be a dict, got {type(self.info).__name__}.")
        try:
            self.info = _jsonable(self.info)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"info must be JSON-serialisable: {exc}") from None

    @property
    def n_spikes(self):
        """Number of spike waveforms.

        Examples
        --------
        >>> library.n_spikes == len(library.spikes)
        True
        """
        return len(self.spikes)

    @property
    def n_background(self):
        """Number of background segments.

        Examples
        --------
        >>> library.n_background == len(library.background)
        True
        """
        return len(self.background)

    @property
    def times(self):
        """Time of each spike sample relative to the peak, in seconds.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> lines = plt.plot(library.times, library.spikes[:10].T)  # mV
        """
        return self.tmin + np.arange(self.spikes.shape[1]) / self.sfreq

    def __repr__(self):
        n_regions = len(np.unique(self.spike_region))
        return (
            f"<WaveformLibrary | {self.n_spikes} spikes from {n_regions} regions "
            f"({self.spikes.shape[1]} samples, {self.tmin:g} to "
            f"{self.times[-1] if self.spikes.shape[1] else self.tmin:g} s), "
            f"{self.n_background} background segments "
            f"({self.background.shape[1] / self.sfreq:g} s), {self.sfreq:g} Hz>"
        )

    def _arrays(self):
        return {name: getattr(self, name) for name in _ARRAYS}

    def save(self, fname, *, overwrite=False):
        """Save the library to one compressed ``.npz`` file, atomically.

        The arrays are stored with a JSON metadata entry holding the format
        version, ``sfreq``, ``tmin``, ``info`` and the shape, dtype and SHA-256
        of every array, so :meth:`load` can detect partial or edited files. The
        file is written under a temporary name in the same folder and renamed,
        so readers never see a partial file.

        Parameters
        ----------
        fname : path-like
            Output file name; must end with ``.npz``.
        overwrite : bool
            Whether to replace an existing file.

        Returns
        -------
        fname : Path
            The written file.

        See Also
        --------
        load, read_waveform_library

        Examples
        --------
        >>> fname = library.save("my-library.npz", overwrite=True)
        >>> library = WaveformLibrary.load(fname)
        """
        fname = Path(fname).expanduser()
        if fname.suffix != ".npz":
            raise ValueError(f"fname must end with .npz, got {fname.name!r}.")
        if fname.exists() and not overwrite:
            raise FileExistsError(f"{fname} exists; pass overwrite=True to replace it.")
        arrays = self._arrays()
        meta = dict(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            sfreq=self.sfreq,
            tmin=self.tmin,
            info=self.info,
            arrays={
                name: dict(
                    shape=list(a.shape), dtype=a.dtype.str, sha256=array_sha256(a)
                )
                for name, a in arrays.items()
            },
        )
        with atomic_path(fname) as tmp, open(tmp, "wb") as fid:
            meta_arr = np.array(json.dumps(meta))
            np.savez_compressed(fid, **arrays, **{_META_KEY: meta_arr})
            fid.flush()
            os.fsync(fid.fileno())
        return fname

    @classmethod
    def load(cls, fname):
        """Load and verify a library written by :meth:`save`.

        Parameters
        ----------
        fname : path-like
            The ``.npz`` file.

        Returns
        -------
        library : WaveformLibrary
            The library.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If the file is a valid ``.npz`` but not a waveform library (or one
            of a newer format).
        OSError
            If the file is truncated, corrupt, lacks arrays, or an array does
            not match its recorded shape or SHA-256 (the message says how to
            rebuild it).

        See Also
        --------
        save, read_waveform_library

        Examples
        --------
        >>> from mne_brainforge.simulation import WaveformLibrary
        >>> library = WaveformLibrary.load("my-library.npz")
        """
        fname = Path(fname).expanduser()
        if not fname.is_file():
            raise FileNotFoundError(
                f"No waveform library at {fname}; build one with "
                "build_waveform_library() or fetch_waveform_library()."
            )
        try:
            npz = np.load(fname, allow_pickle=False)
        except Exception as exc:  # truncated zip, not a zip, pickle, ...
            raise _corrupt(fname, f"not a readable .npz file: {exc}") from None
        if not hasattr(npz, "files"):  # a plain .npy array
            raise ValueError(
                f"{fname} is a .npy array, not a mne-brainforge waveform library. "
                + _rebuild_hint(fname)
            )
        with npz:
            if _META_KEY not in npz.files:
                raise ValueError(
                    f"{fname} is not a mne-brainforge waveform library (no "
                    f"{_META_KEY!r} entry). " + _rebuild_hint(fname)
                )
            try:
                meta = json.loads(str(npz[_META_KEY][()]))
            except Exception as exc:
                raise _corrupt(fname, f"unreadable metadata: {exc}") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(
                    f"{fname} is not a mne-brainforge waveform library (format "
                    f"{meta.get('format') if isinstance(meta, dict) else None!r}). "
                    + _rebuild_hint(fname)
                )
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{fname} has waveform-library format version "
                    f"{meta.get('format_version')!r}; this mne-brainforge reads "
                    f"version {FORMAT_VERSION}. " + _rebuild_hint(fname)
                )
            expected = meta.get("arrays", {})
            arrays = {}
            for name in _ARRAYS:
                if name not in expected or name not in npz.files:
                    raise _corrupt(fname, f"array {name!r} is missing")
                try:
                    arr = npz[name]
                except Exception as exc:  # bad CRC, truncated member, ...
                    reason = f"array {name!r} is unreadable: {exc}"
                    raise _corrupt(fname, reason) from None
                exp = expected[name]
                if list(arr.shape) != exp.get("shape") or arr.dtype.str != exp.get(
                    "dtype"
                ):
                    raise _corrupt(
                        fname,
                        f"array {name!r} has shape {arr.shape} and dtype {arr.dtype}, "
                        f"expected {tuple(exp.get('shape', ()))} and "
                        f"{exp.get('dtype')}",
                    )
                if array_sha256(arr) != exp.get("sha256"):
                    raise _corrupt(fname, f"array {name!r} fails its SHA-256 checksum")
                arrays[name] = arr
        try:
            return cls(
                **arrays, sfreq=meta["sfreq"], tmin=meta["tmin"], info=meta["info"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _corrupt(fname, f"inconsistent content: {exc}") from None


def read_waveform_library(fname):
    """Read a waveform library saved with :meth:`WaveformLibrary.save`.

    Parameters
    ----------
    fname : path-like
        The ``.npz`` file.

    Returns
    -------
    library : WaveformLibrary
        The verified library (see :meth:`WaveformLibrary.load` for the errors).

    See Also
    --------
    fetch_waveform_library, build_waveform_library

    Examples
    --------
    >>> from mne_brainforge.simulation import build_waveform_library
    >>> from mne_brainforge.simulation import read_waveform_library
    >>> fname = build_waveform_library(regions=[5, 40]).save("small-library.npz")
    >>> library = read_waveform_library(fname)
    """
    return WaveformLibrary.load(fname)


def _library_task(signals, sfreq, region, setting, seed, *, params):
    """Worker: extract the spikes and background of one simulation."""
    p = params
    t0 = time.perf_counter()
    from .spikes import _maybe_resample

    signals, sfreq = _maybe_resample(signals, sfreq, p["sfreq"])
    spikes, times, counts = extract_spikes(
        signals,
        sfreq,
        region,
        transient=p["transient"],
        window=p["window"],
        threshold=p["threshold"],
        isolation=p["isolation"],
        min_distance=p["min_distance"],
        return_counts=True,
        verbose=False,
    )
    background, bg_regions, onsets = extract_background(
        signals,
        sfreq,
        length=p["background_length"],
        transient=p["transient"],
        threshold=p["background_threshold"],
        n_segments=p["n_background"],
        seed=seed,
        verbose=False,
    )
    return dict(
        spikes=spikes.astype(np.float32),
        spike_time=times,
        counts=counts,
        background=background.astype(np.float32),
        background_region=bg_regions,
        background_time=onsets,
        time=time.perf_counter() - t0,
    )


def _versions():
    from .._version import __version__

    out = {"mne_brainforge": __version__}
    for dist in ("tvb-library", "tvb-data", "mne", "numpy", "scipy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


@verbose
def build_waveform_library(
    *,
    regions=None,
    settings=DEFAULT_SETTINGS,
    duration=DEFAULT_BUILD["duration"],
    dt=DEFAULT_BUILD["dt"],
    sfreq=DEFAULT_BUILD["sfreq"],
    connectivity=DEFAULT_CONNECTIVITY,
    coupling_strength=DEFAULT_COUPLING,
    a_target=DEFAULT_BUILD["a_target"],
    a_other=DEFAULT_BUILD["a_other"],
    transient=DEFAULT_BUILD["transient"],
    window=DEFAULT_BUILD["window"],
    threshold=DEFAULT_BUILD["threshold"],
    isolation=DEFAULT_BUILD["isolation"],
    min_distance=DEFAULT_BUILD["min_distance"],
    background_length=DEFAULT_BUILD["background_length"],
    background_threshold=DEFAULT_BUILD["background_threshold"],
    n_background=DEFAULT_BUILD["n_background"],
    n_jobs=2,
    seed=0,
    verbose=None,
):
    """Simulate Jansen-Rit networks and collect a waveform library.

    Every target region is simulated once per (mu, noise) setting (see
    :func:`~mne_brainforge.simulation.neural_mass.simulate_many`), with that
    region hyperexcitable. In each simulation the isolated spikes of the target
    region are extracted
    (:func:`~mne_brainforge.simulation.extract_spikes`) and
    ``n_background`` spike-free background segments are drawn from all regions
    (:func:`~mne_brainforge.simulation.extract_background`). With the
    defaults (76 regions x 4 settings x 10 s of simulated time) this takes
    about 5 minutes with two processes (about 1.2 s of CPU per simulation, 0.1 s
    of extraction) and gives about 1700 isolated spikes from all 76 regions and
    1216 background segments (about 4 MB on disk).

    Parameters
    ----------
    regions : array-like of int | None
        Target regions (default: all regions of the connectome).
    settings : sequence of (float, float)
        The ``(mu, noise)`` settings, see
        :func:`~mne_brainforge.simulation.simulate_jansen_rit`.
    duration : float
        Simulated time per simulation in seconds, transient included.
    dt : float
        Integration step in seconds.
    sfreq : float
        Sampling rate of the library in Hz (the simulations, at ``1 / dt``, are
        resampled with an anti-aliasing polyphase filter).
    connectivity : str
        The tvb-data connectome (see
        :func:`~mne_brainforge.simulation.load_connectivity`).
    coupling_strength, a_target, a_other : float
        See :func:`~mne_brainforge.simulation.simulate_jansen_rit`.
    transient : float
        Initial part of each simulation to discard, in seconds.
    window : tuple of float
        ``(tmin, tmax)`` of the spike waveforms around the peak, in seconds. The
        default 0.5 s covers the Jansen-Rit spike: the rise that starts about
        0.15 s before the peak and the slow wave that ends about 0.25 s after.
    threshold, isolation, min_distance : float
        Spike detection parameters, see
        :func:`~mne_brainforge.simulation.extract_spikes`.
    background_length : float
        Length of the background segments in seconds.
    background_threshold : float
        ``threshold`` of
        :func:`~mne_brainforge.simulation.extract_background`.
    n_background : int
        Background segments drawn from each simulation.
    n_jobs : int
        Number of worker processes.
    seed : int
        Global seed; the library is a deterministic function of the arguments
        (whatever ``n_jobs``).
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    library : WaveformLibrary
        The library; ``library.info`` records the arguments, counts, timings
        and package versions.

    See Also
    --------
    fetch_waveform_library : The default library, built once and cached.

    Notes
    -----
    See :doc:`/simulation` and the tutorial
    :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    A small library in seconds (2 target regions, 1 setting, 4 s simulations):

    >>> from mne_brainforge.simulation import build_waveform_library
    >>> library = build_waveform_library(
    ...     regions=[5, 40], settings=[(0.095, 0.75)], duration=4.0, n_background=8)
    >>> library.sfreq
    500.0
    """
    t_start = time.perf_counter()
    settings = _check_settings(settings)
    duration = float(duration)
    dt = float(dt)
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(
            f"duration must be a positive number of seconds, got {duration}."
        )
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive number of seconds, got {dt}.")
    sfreq = float(sfreq)
    if not np.isfinite(sfreq) or sfreq <= 0:
        raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq}.")
    if sfreq > 1.0 / dt * (1 + 1e-9):
        raise ValueError(
            f"sfreq ({sfreq} Hz) must not exceed the integration rate 1/dt = "
            f"{1 / dt:g} Hz."
        )
    # validate the extraction parameters here, not in the worker processes
    from .spikes import _check_nonneg, _check_window

    window = _check_window(window)
    transient = _check_nonneg("transient", transient)
    if transient + (window[1] - window[0]) >= duration:
        raise ValueError(
            f"duration ({duration} s) must exceed transient ({transient} s) plus "
            f"the window length ({window[1] - window[0]} s)."
        )
    if transient + background_length > duration:
        raise ValueError(
            f"duration ({duration} s) must be at least transient plus "
            f"background_length ({background_length} s)."
        )
    for name, value in (
        ("threshold", threshold),
        ("min_distance", min_distance),
        ("background_threshold", background_threshold),
    ):
        _check_nonneg(name, value)
    _check_nonneg("isolation", isolation, allow_none=True)
    if _check_nonneg("background_length", background_length) <= 0:
        raise ValueError("background_length must be positive.")
    if not isinstance(n_background, (int, np.integer)) or n_background < 0:
        raise ValueError(
            f"n_background must be a non-negative int, got {n_background}."
        )
    conn = load_connectivity(connectivity, verbose=False)
    n_regions = conn.number_of_regions
    region_labels = [str(lab) for lab in conn.region_labels]

    params = dict(
        sfreq=sfreq,
        transient=transient,
        window=window,
        threshold=float(threshold),
        isolation=None if isolation is None else float(isolation),
        min_distance=float(min_distance),
        background_length=float(background_length),
        background_threshold=float(background_threshold),
        n_background=int(n_background),
    )
    results = simulate_many(
        regions,
        settings,
        connectivity=connectivity,
        func=functools.partial(_library_task, params=params),
        seed=seed,
        n_jobs=n_jobs,
        duration=duration,
        dt=dt,
        a_target=a_target,
        a_other=a_other,
        coupling_strength=coupling_strength,
        verbose=verbose,
    )
    t_sim_done = time.perf_counter()

    n_spk = [len(r["result"]["spikes"]) for r in results]
    n_bg = [len(r["result"]["background"]) for r in results]
    n_times = int(round(window[1] * sfreq)) + int(round(-window[0] * sfreq)) + 1
    n_times_bg = int(round(background_length * sfreq))
    spikes = np.concatenate(
        [r["result"]["spikes"].reshape(-1, n_times) for r in results]
    )
    background = np.concatenate(
        [r["result"]["background"].reshape(-1, n_times_bg) for r in results]
    )

    def _per(key, counts):
        return np.repeat([r[key] for r in results], counts)

    counts = {
        key: int(sum(r["result"]["counts"][key] for r in results))
        for key in ("n_candidates", "n_edge", "n_overlap", "n_not_isolated")
    }
    spike_region = _per("region", n_spk)
    per_region = np.bincount(spike_region, minlength=n_regions)
    used_regions = sorted({r["region"] for r in results})
    counts.update(
        n_simulations=len(results),
        n_spikes=int(spikes.shape[0]),
        n_background=int(background.shape[0]),
        n_regions_with_spikes=int((per_region > 0).sum()),
        spikes_per_region_min=int(per_region[used_regions].min()),
        spikes_per_region_median=float(np.median(per_region[used_regions])),
        spikes_per_region_max=int(per_region[used_regions].max()),
        spikes_per_setting=np.bincount(
            _per("setting", n_spk), minlength=len(settings)
        ).tolist(),
    )
    t_sim = sum(r["time_simulation"] for r in results)
    t_ext = sum(r["time_processing"] for r in results)
    t_total = time.perf_counter() - t_start
    timings = dict(
        wall_total_s=round(t_total, 2),
        wall_simulate_and_extract_s=round(t_sim_done - t_start, 2),
        cpu_simulation_s=round(t_sim, 2),
        cpu_extraction_s=round(t_ext, 2),
        n_jobs=int(n_jobs),
    )
    recipe = dict(
        DEFAULT_BUILD,
        connectivity=str(connectivity),
        settings=settings,
        duration=float(duration),
        dt=float(dt),
        sfreq=sfreq,
        coupling_strength=float(coupling_strength),
        a_target=float(a_target),
        a_other=float(a_other),
        transient=transient,
        window=window,
        threshold=float(threshold),
        isolation=params["isolation"],
        min_distance=float(min_distance),
        background_length=float(background_length),
        background_threshold=float(background_threshold),
        n_background=int(n_background),
        seed=int(seed),
        regions=None if regions is None else used_regions,
        format_version=FORMAT_VERSION,
        revision=LIBRARY_REVISION,
    )
    info = dict(
        description=(
            "Isolated spike and background waveforms of Jansen-Rit networks, one "
            "hyperexcitable region at a time (DeepSIF-style), in mV relative to "
            "the resting level."
        ),
        connectivity=str(connectivity),
        n_regions=int(n_regions),
        region_labels=region_labels,
        regions=used_regions,
        settings=[list(s) for s in settings],
        settings_columns=["mu (1/ms)", "noise"],
        simulation=dict(
            duration=float(duration),
            dt=float(dt),
            a_target=float(a_target),
            a_other=float(a_other),
            coupling_strength=float(coupling_strength),
            model="tvb.simulator.models.JansenRit (v0=6 mV)",
            coupling="tvb.simulator.coupling.SigmoidalJansenRit",
            integrator="tvb.simulator.integrators.HeunStochastic + noise.Additive",
        ),
        extraction=dict(
            params,
            exclusive=True,
            background_guard=0.2,
            detection="robust z-score (median / MAD, sigma-clipped) per region",
        ),
        seed=int(seed),
        counts=counts,
        timings=timings,
        versions=_versions(),
        recipe=recipe,
    )
    library = WaveformLibrary(
        spikes=spikes,
        spike_region=spike_region,
        spike_setting=_per("setting", n_spk),
        spike_seed=_per("seed", n_spk),
        spike_time=np.concatenate([r["result"]["spike_time"] for r in results]),
        background=background,
        background_region=np.concatenate(
            [r["result"]["background_region"] for r in results]
        ),
        background_target=_per("region", n_bg),
        background_setting=_per("setting", n_bg),
        background_seed=_per("seed", n_bg),
        background_time=np.concatenate(
            [r["result"]["background_time"] for r in results]
        ),
        sfreq=sfreq,
        tmin=-int(round(-window[0] * sfreq)) / sfreq,
        info=info,
    )
    logger.info(
        f"Waveform library: {counts['n_spikes']} isolated spikes "
        f"({counts['n_candidates']} candidates; {counts['n_not_isolated']} not "
        f"isolated, {counts['n_overlap']} doublets, {counts['n_edge']} at edges) "
        f"from {counts['n_regions_with_spikes']}/{len(used_regions)} regions, "
        f"{counts['n_background']} background segments. Wall time "
        f"{t_total:.1f} s; worker time {t_sim:.1f} s simulating, {t_ext:.1f} s "
        "extracting."
    )
    return library


def _default_recipe():
    """The recipe recorded by build_waveform_library() with default arguments."""
    return _jsonable(
        dict(
            DEFAULT_BUILD,
            regions=None,
            format_version=FORMAT_VERSION,
            revision=LIBRARY_REVISION,
        )
    )


def _default_path():
    from ..utils import get_data_path

    return get_data_path() / DEFAULT_FNAME


@verbose
def fetch_waveform_library(fname=None, *, rebuild=False, n_jobs=2, verbose=None):
    """Return the default waveform library, building and caching it if needed.

    The library is built once with :func:`build_waveform_library` (default
    arguments; about 5 minutes on two cores) and saved atomically. Later calls
    load the file and verify it; a file that is truncated, edited, not a
    library, or built with other default parameters (an older version of
    mne-brainforge) is deleted and rebuilt. Concurrent processes build it once
    (file lock).

    Parameters
    ----------
    fname : path-like | None
        Where to cache the library; default
        ``mne_brainforge.datasets.get_data_path() / "waveform_library.npz"``. The
        file at this path is owned by this cache: it is replaced if invalid.
    rebuild : bool
        Whether to rebuild the library even if a valid one is cached.
    n_jobs : int
        Number of processes used if the library is built.
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    library : WaveformLibrary
        The library.

    See Also
    --------
    build_waveform_library, mne_brainforge.training.train_model

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    >>> from mne_brainforge.simulation import fetch_waveform_library
    >>> library = fetch_waveform_library()  # built on the first call (minutes)
    >>> library.n_spikes, library.n_background
    (1697, 1216)
    """
    from filelock import FileLock

    from ..utils import cached_file

    path = _default_path() if fname is None else Path(fname).expanduser()
    if path.suffix != ".npz":
        raise ValueError(f"fname must end with .npz, got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    recipe = _default_recipe()
    # cached_file only builds a missing file: remove an invalid one first, under
    # the lock cached_file uses (released before calling it: not reentrant)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        if path.exists():
            log, reason = logger.info, "rebuild=True"
            if not rebuild:
                try:
                    lib = WaveformLibrary.load(path)
                except (OSError, ValueError) as exc:
                    log, reason = logger.warning, str(exc).split(" Delete ")[0]
                else:
                    if lib.info.get("recipe") == recipe:
                        return lib
                    reason = "it was built with other parameters or code revision"
            log(f"Rebuilding the waveform library {path}: {reason}")
            path.unlink()

    def _write(tmp):
        logger.info(f"Building the waveform library {path} (a few minutes, once).")
        build_waveform_library(n_jobs=n_jobs, verbose=verbose).save(tmp, overwrite=True)

    cached_file(path, _write)
    return WaveformLibrary.load(path)
