"""Jansen-Rit neural-mass networks on a TVB connectome (DeepSIF-style, cheap).

One region of a whole-brain network of Jansen-Rit neural masses is made
hyperexcitable (a larger excitatory synaptic gain ``A``): driven by noise it
produces sporadic interictal-spike-like discharges while the other regions,
at the physiological gain, produce background activity. This follows the
simulation scheme of DeepSIF (Sun et al., PNAS 2022), on the 76-region
connectome shipped with ``tvb-data`` instead of a 994-region one.

Time arguments of this module are in seconds; The Virtual Brain (TVB) works
in milliseconds internally and the conversion is done here.
"""

import functools
import inspect
import logging
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose

from ..utils import check_number

__all__ = [
    "DEFAULT_CONNECTIVITY",
    "TVB_CONNECTIVITIES",
    "load_connectivity",
    "JANSEN_RIT_REGIMES",
    "simulate_jansen_rit",
    "simulate_many",
    "simulate_regimes",
    "task_seed",
]
#: Connectomes shipped with ``tvb-data`` (``tvb_data/connectivity/<name>.zip``).
TVB_CONNECTIVITIES = (
    "connectivity_66",
    "connectivity_68",
    "connectivity_76",
    "connectivity_96",
    "connectivity_192",
)
DEFAULT_CONNECTIVITY = "connectivity_76"

#: Default Jansen-Rit parameters of :func:`simulate_jansen_rit`.
#: ``mu`` (mean input firing rate, ms^-1 as in TVB) and ``noise`` (see
#: :func:`simulate_jansen_rit`) put the non-target regions (A = 3.25 mV) in the
#: noise-driven, low-amplitude regime (no spikes) and the target region
#: (A = 3.5 mV) in the regime of sporadic noise-triggered spikes (about one
#: spike per second with these defaults).
DEFAULT_MU = 0.09
DEFAULT_NOISE = 1.0
DEFAULT_COUPLING = 0.1
DEFAULT_SPEED = 3.0  # m/s (= mm/ms), TVB's default conduction speed

#: Jansen-Rit regimes beyond isolated spikes, every region of the network in
#: the regime (``a_target = a_other = A``, coupling 0.1, ``connectivity_76``):
#: name -> the excitatory gains ``A`` (mV), mean inputs ``mu`` (ms^-1) and
#: noise levels simulated (all combinations). From a sweep of A 3.25-4.2 mV,
#: mu 0.09-0.22 ms^-1, noise 0.25-1 (dominant frequency and spike rate of a
#: region): ``'rhythmic'``, a gain above 3.5 mV at low input, gives periodic
#: spike(-wave) discharges at 2.5-4 Hz (ictal-like; A 3.7: 2.9 Hz, 4.2: 3.9 Hz);
#: ``'alpha'``, the physiological gain at a higher input, gives the 10-11 Hz
#: limit cycle of Jansen & Rit (1995), waxing and waning with more noise.
JANSEN_RIT_REGIMES = {
    "rhythmic": dict(a=(3.7, 3.9, 4.2), mu=(0.09,), noise=(0.25, 1.0)),
    "alpha": dict(a=(3.25,), mu=(0.15, 0.22), noise=(0.25, 1.0)),
}

# Jansen-Rit input range [p_min, p_max] in ms^-1 (TVB's defaults); half of it
# is the noise scale of TVB's Jansen-Rit demo.
_P_MIN, _P_MAX = 0.12, 0.32


@contextmanager
def _quiet_tvb():
    """Silence TVB's import-time warnings and its chatty loggers (restored after).

    TVB configures its loggers from a file when first imported, giving ``tvb``
    and some ``tvb.*`` loggers their own levels and handlers, so we import that
    configuration first and then raise every ``tvb*`` logger to ERROR.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"tvb(\..*)?$")
        warnings.filterwarnings("ignore", message=".*[Gg]eodesic.*")
        import tvb.basic.logger.builder  # noqa: F401 (applies TVB's log config)

        saved = {}
        for name, lg in list(logging.root.manager.loggerDict.items()):
            if name.split(".")[0] == "tvb" and isinstance(lg, logging.Logger):
                saved[lg] = lg.level
                lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in saved.items():
                lg.setLevel(level)


def _connectivity_path(name):
    """Resolve a tvb-data connectome name (or a path to a TVB zip) to a path."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a str or path-like, got {type(name).__name__}.")
    name_str = str(name)
    if name_str.removesuffix(".zip") in TVB_CONNECTIVITIES:
        import tvb_data

        path = (
            Path(tvb_data.__file__).parent
            / "connectivity"
            / (name_str.removesuffix(".zip") + ".zip")
        )
        if not path.is_file():
            raise OSError(
                f"tvb-data does not contain {path.name} (expected at {path}); "
                "reinstall tvb-data (pip install tvb-data)."
            )
        return path
    path = Path(name_str).expanduser()
    if path.suffix == ".zip" and path.is_file():
        return path
    raise ValueError(
        f"Unknown connectivity {name_str!r}: pass one of {TVB_CONNECTIVITIES} "
        "(shipped with tvb-data) or the path of a TVB connectivity .zip file."
    )


@verbose
def load_connectivity(name=DEFAULT_CONNECTIVITY, *, speed=DEFAULT_SPEED, verbose=None):
    """Load and configure a structural connectome shipped with tvb-data.

    The default, ``"connectivity_76"``, is TVB's default 76-region connectome
    (the one used by TVB's own Jansen-Rit demos). It is small enough for a
    76-node Jansen-Rit network to run 10 s of simulated time in about 1-2 s on
    one CPU core, so a library of hundreds of simulations builds in minutes.
    DeepSIF used a 994-region parcellation, which ``tvb-data`` does not ship;
    the waveforms we extract depend on the local dynamics of one region, not on
    the parcellation, so the smaller connectome loses little.

    Parameters
    ----------
    name : str | path-like
        One of ``"connectivity_66"``, ``"connectivity_68"``,
        ``"connectivity_76"``, ``"connectivity_96"``, ``"connectivity_192"``
        (shipped with tvb-data), or the path of a TVB connectivity ``.zip``.
    speed : float
        Axonal conduction speed in m/s (equivalently mm/ms), used with the tract
        lengths to set the transmission delays.
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    connectivity : tvb.datatypes.connectivity.Connectivity
        The configured connectome, weights divided by their maximum (so the
        strongest connection is 1, as in TVB's demos) and no self-connections.

    See Also
    --------
    simulate_jansen_rit, build_waveform_library

    Examples
    --------
    >>> from mne_brainforge.simulation import load_connectivity
    >>> conn = load_connectivity("connectivity_76")
    >>> conn.number_of_regions
    76
    >>> str(conn.region_labels[0])
    'rA1'
    """
    speed = float(speed)
    if not np.isfinite(speed) or speed <= 0:
        raise ValueError(f"speed must be a positive number of m/s, got {speed}.")
    path = _connectivity_path(name)
    with _quiet_tvb():
        from tvb.datatypes.connectivity import Connectivity

        conn = Connectivity.from_file(str(path))
        weights = np.array(conn.weights, float)
        np.fill_diagonal(weights, 0.0)
        if weights.max() <= 0:
            raise ValueError(f"The connectome {path} has no positive weight.")
        conn.weights = weights / weights.max()
        conn.speed = np.array([speed])
        conn.configure()
    logger.info(
        f"Loaded {path.name}: {conn.number_of_regions} regions, "
        f"max tract length {conn.tract_lengths.max():.0f} mm, speed {speed} m/s."
    )
    return conn


def _check_positive(name, value):
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value}.")
    return value


def _check_region(target_region, n_regions):
    if isinstance(target_region, (bool, np.bool_)) or not isinstance(
        target_region, (int, np.integer)
    ):
        raise TypeError(
            f"target_region must be an int, got {type(target_region).__name__}."
        )
    target_region = int(target_region)
    if not 0 <= target_region < n_regions:
        raise ValueError(
            f"target_region must be in [0, {n_regions - 1}] (the connectome has "
            f"{n_regions} regions), got {target_region}."
        )
    return target_region


def _sampling_step(dt, sfreq_out):
    """Number of integration steps per output sample (an integer)."""
    if sfreq_out is None:
        return 1
    sfreq_out = _check_positive("sfreq_out", sfreq_out)
    ratio = 1.0 / (dt * sfreq_out)
    step = int(round(ratio))
    if step < 1 or abs(ratio - step) > 1e-6 * ratio:
        raise ValueError(
            f"sfreq_out={sfreq_out} Hz must divide the integration rate 1/dt = "
            f"{1.0 / dt:g} Hz by an integer (e.g. {1.0 / dt:g}, {0.5 / dt:g}, "
            f"{0.25 / dt:g} Hz)."
        )
    return step


def _check_sim_args(
    duration, dt, mu, noise, a_target, a_other, coupling_strength, sfreq_out
):
    """Validate the arguments of simulate_jansen_rit (all times in seconds)."""
    duration = _check_positive("duration", duration)
    dt = _check_positive("dt", dt)
    if dt > 5e-3:
        raise ValueError(
            f"dt must be at most 5 ms (0.005 s) to resolve the Jansen-Rit time "
            f"constants, got {dt} s (dt is in seconds, not milliseconds)."
        )
    if duration < 10 * dt:
        raise ValueError(
            f"duration ({duration} s) must be at least 10 integration steps "
            f"(dt={dt} s); both are in seconds."
        )
    mu = float(mu)
    if not np.isfinite(mu) or mu < 0:
        raise ValueError(f"mu must be a non-negative rate in ms^-1, got {mu}.")
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}.")
    a_target = _check_positive("a_target", a_target)
    a_other = _check_positive("a_other", a_other)
    coupling_strength = float(coupling_strength)
    if not np.isfinite(coupling_strength) or coupling_strength < 0:
        raise ValueError(
            f"coupling_strength must be non-negative, got {coupling_strength}."
        )
    step = _sampling_step(dt, sfreq_out)
    return duration, dt, mu, noise, a_target, a_other, coupling_strength, step


@verbose
def simulate_jansen_rit(
    connectivity,
    target_region,
    *,
    duration=10.0,
    dt=1e-3,
    mu=DEFAULT_MU,
    noise=DEFAULT_NOISE,
    a_target=3.5,
    a_other=3.25,
    coupling_strength=DEFAULT_COUPLING,
    seed=0,
    sfreq_out=None,
    verbose=None,
):
    r"""Simulate a Jansen-Rit network with one hyperexcitable region.

    Every region is a Jansen-Rit neural mass (TVB's ``models.JansenRit``, with
    the firing threshold ``v0 = 6 mV`` of the original paper) receiving a noisy
    input of mean ``mu``. Regions interact through the delayed sigmoidal
    Jansen-Rit coupling (``coupling.SigmoidalJansenRit``) over the connectome.
    The excitatory synaptic gain is ``A = a_target`` in the target region and
    ``A = a_other`` elsewhere; with the defaults the target region fires
    sporadic spikes while the others produce low-amplitude background. The
    stochastic system is integrated with Heun's method
    (``integrators.HeunStochastic``) and additive noise seeded by ``seed``.

    Parameters
    ----------
    connectivity : tvb.datatypes.connectivity.Connectivity | str
        A connectome from :func:`load_connectivity`, or a name it accepts.
    target_region : int
        Index of the hyperexcitable region.
    duration : float
        Simulated time in seconds (including the initial transient, which the
        caller should discard: the network starts at rest and settles within
        about 0.5 s).
    dt : float
        Integration step in seconds (TVB uses milliseconds internally). 1 ms is
        the largest step that resolves the 10-20 ms synaptic time constants;
        halving it changes spike rates by a few spikes per 10 s, not shapes.
    mu : float
        Mean input firing rate :math:`\mu` in ms\ :sup:`-1` (TVB's unit; 0.09
        is 90 pulses/s), the same in all regions.
    noise : float
        Standard deviation of the input fluctuations :math:`p(t) - \mu`, in
        units of half the physiological input range,
        :math:`(p_{max} - p_{min}) / 2 = 0.1` ms\ :sup:`-1`, the noise level of
        TVB's Jansen-Rit demo. It enters the equation of :math:`\dot y_4` as
        additive white noise of variance :math:`2D` per ms with
        :math:`D = (A\,a\,\sigma)^2 / 2`, :math:`\sigma = 0.1\,\mathrm{noise}`.
    a_target, a_other : float
        Excitatory synaptic gain :math:`A` in mV of the target region and of the
        other regions (3.25 mV is the physiological value of Jansen & Rit).
    coupling_strength : float
        Global coupling scale ``a`` of ``SigmoidalJansenRit``. Small values
        (0.1) keep the regions nearly independent, so that a spike stays local.
    seed : int
        Seed of the noise and of the initial conditions; the same seed and
        arguments give the same output.
    sfreq_out : float | None
        Sampling rate of the output in Hz. ``None`` (default) returns every
        integration step (``1 / dt`` Hz, TVB's ``Raw`` monitor); otherwise
        ``1 / (dt * sfreq_out)`` must be an integer and the output is the mean
        over each sampling period (TVB's ``TemporalAverage`` monitor, a boxcar
        anti-aliasing filter).
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`.

    Returns
    -------
    signals : ndarray, shape (n_regions, n_times)
        The EEG-relevant output of each region, the mean membrane potential of
        the pyramidal cells :math:`y_1 - y_2`, in mV. Sample ``k`` is at time
        ``(k + 1) / sfreq`` seconds.
    sfreq : float
        The sampling rate of ``signals`` in Hz.

    See Also
    --------
    load_connectivity, extract_spikes, extract_background
    build_waveform_library : Runs many such simulations and extracts their
        waveforms.

    Notes
    -----
    See :doc:`/simulation` for how the simulations make the training data.

    Examples
    --------
    >>> from mne_brainforge.simulation import extract_spikes, simulate_jansen_rit
    >>> signals, sfreq = simulate_jansen_rit("connectivity_76", 5, duration=10.0,
    ...                                      sfreq_out=500.0)
    >>> signals.shape, sfreq
    ((76, 5000), 500.0)
    >>> waveforms, peak_times = extract_spikes(signals, sfreq, target=5)
    """
    duration, dt, mu, noise, a_target, a_other, coupling_strength, step = (
        _check_sim_args(
            duration, dt, mu, noise, a_target, a_other, coupling_strength, sfreq_out
        )
    )
    if isinstance(connectivity, (str, os.PathLike)):
        connectivity = load_connectivity(connectivity, verbose=False)
    n_regions = int(connectivity.number_of_regions)
    target_region = _check_region(target_region, n_regions)
    sfreq = 1.0 / (dt * step)
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")

    dt_ms = dt * 1e3
    n_steps = int(round(duration / dt))
    with _quiet_tvb():
        from tvb.simulator import coupling, integrators, models, monitors
        from tvb.simulator import noise as tvb_noise
        from tvb.simulator.simulator import Simulator

        gains = np.full(n_regions, a_other)
        gains[target_region] = a_target
        # observe y1 and y2 only (monitors index the model's observed variables)
        model = models.JansenRit(
            A=gains,
            mu=np.array([mu]),
            v0=np.array([6.0]),
            variables_of_interest=["y1", "y2"],
        )
        # noise on y4 only (the input p(t) enters there), scaled by each
        # region's gain A so that it is the same input fluctuation everywhere
        sigma = noise * (_P_MAX - _P_MIN) / 2.0
        nsig = np.zeros((6, n_regions))
        nsig[4] = (gains * model.a[0] * sigma) ** 2 / 2.0
        rng = np.random.default_rng([seed, target_region, 1])
        integrator = integrators.HeunStochastic(
            dt=dt_ms,
            noise=tvb_noise.Additive(
                nsig=nsig,
                random_stream=np.random.RandomState(
                    np.random.SeedSequence([seed, target_region, 2]).generate_state(4)
                ),
            ),
        )
        if step == 1:
            monitor = monitors.Raw()
        else:
            monitor = monitors.TemporalAverage(period=step * dt_ms)
        # Start near rest (constant history, small jitter): the default random
        # initial conditions of TVB span +-500 mV and take ~0.3 s to die out.
        delays = np.asarray(connectivity.tract_lengths) / float(
            np.asarray(connectivity.speed).ravel()[0]
        )
        horizon = int(np.rint(delays.max() / dt_ms)) + 2
        init = np.zeros((1, 6, n_regions, 1))
        init[0, :3, :, 0] = 0.05 * rng.standard_normal((3, n_regions))
        init = np.repeat(init, horizon, axis=0)
        sim = Simulator(
            model=model,
            connectivity=connectivity,
            coupling=coupling.SigmoidalJansenRit(a=np.array([coupling_strength])),
            integrator=integrator,
            monitors=(monitor,),
            initial_conditions=init,
            simulation_length=n_steps * dt_ms,
        )
        sim.configure()
        t0 = time.perf_counter()
        ((_, data),) = sim.run()
    if data is None or len(data) == 0:
        raise RuntimeError("TVB returned no samples; is duration too short?")
    signals = (data[:, 0, :, 0] - data[:, 1, :, 0]).T
    if not np.all(np.isfinite(signals)):
        raise RuntimeError(
            "The simulation diverged (non-finite values); lower dt, noise or "
            "coupling_strength."
        )
    logger.debug(
        f"Jansen-Rit: {n_regions} regions, {duration} s at dt={dt} s in "
        f"{time.perf_counter() - t0:.2f} s (target {target_region}, mu={mu}, "
        f"noise={noise}, seed={seed})."
    )
    return np.ascontiguousarray(signals), sfreq


def task_seed(seed, region, setting):
    """Derive the simulation seed of one (region, setting) from a global seed.

    Parameters
    ----------
    seed : int
        The global seed.
    region : int
        The target region.
    setting : int
        The index of the (mu, noise) setting.

    Returns
    -------
    seed : int
        A 31-bit seed, a deterministic function of the three inputs.
    """
    ss = np.random.SeedSequence([int(seed), int(region), int(setting)])
    return int(ss.generate_state(1, np.uint32)[0] >> 1)


def _check_settings(settings):
    try:
        settings = [tuple(float(v) for v in s) for s in settings]
    except (TypeError, ValueError):
        raise ValueError(
            "settings must be a sequence of (mu, noise) pairs of numbers, got "
            f"{settings!r}."
        ) from None
    if not settings or any(len(s) != 2 for s in settings):
        raise ValueError(
            f"settings must be a non-empty sequence of (mu, noise) pairs, got "
            f"{settings!r}."
        )
    for mu, noise in settings:
        if not (np.isfinite(mu) and np.isfinite(noise)) or mu < 0 or noise < 0:
            raise ValueError(
                f"Each (mu, noise) setting must be non-negative, got {(mu, noise)}."
            )
    return settings


def _run_task(task):
    """Worker: simulate one (region, setting) and post-process it."""
    t0 = time.perf_counter()
    signals, sfreq = simulate_jansen_rit(
        task["connectivity"], task["region"], verbose=False, **task["sim_kwargs"]
    )
    t1 = time.perf_counter()
    func = task["func"]
    if func is None:
        result = (signals, sfreq)
    else:
        result = func(signals, sfreq, task["region"], task["setting"], task["seed"])
    t2 = time.perf_counter()
    return dict(
        region=task["region"],
        setting=task["setting"],
        seed=task["seed"],
        result=result,
        time_simulation=t1 - t0,
        time_processing=t2 - t1,
    )


@verbose
def simulate_many(
    regions=None,
    settings=((DEFAULT_MU, DEFAULT_NOISE),),
    *,
    connectivity=DEFAULT_CONNECTIVITY,
    func=None,
    seed=0,
    n_jobs=2,
    verbose=None,
    **sim_kwargs,
):
    """Run one simulation per (target region, setting), in parallel processes.

    Parameters
    ----------
    regions : array-like of int | None
        The target regions; ``None`` means every region of the connectome.
    settings : sequence of (float, float)
        The ``(mu, noise)`` settings (see :func:`simulate_jansen_rit`). Every
        region is simulated once with every setting.
    connectivity : str | path-like
        A connectome name or path accepted by :func:`load_connectivity` (each
        worker process loads it, which takes milliseconds).
    func : callable | None
        ``func(signals, sfreq, region, setting, seed)`` applied to each
        simulation in the worker process (``setting`` is the index into
        ``settings``, ``seed`` the task's seed), whose result is returned
        instead of the signals (e.g. spike extraction; keeps memory low). Must
        be picklable (a module-level function or a :func:`functools.partial` of
        one).
    seed : int
        Global seed. Each simulation uses ``task_seed(seed, region, setting)``,
        so its output depends only on (region, setting index, seed), not on
        ``n_jobs`` or on the other tasks.
    n_jobs : int
        Number of worker processes (``1`` runs in this process). When called
        from a script, protect the call with ``if __name__ == "__main__":`` as
        for any :mod:`multiprocessing` code.
    verbose : bool | str | int | None
        Control verbosity of the logging output. If ``None``, use the default
        verbosity level. See :func:`mne.verbose`. A progress bar is shown at
        the ``"info"`` level.
    **sim_kwargs
        Passed to :func:`simulate_jansen_rit` (``duration``, ``dt``,
        ``a_target``, ``a_other``, ``coupling_strength``, ``sfreq_out``).

    Returns
    -------
    results : list of dict
        One dict per task, ordered by region then setting, with keys
        ``region``, ``setting`` (index into ``settings``), ``seed`` (the task's
        seed), ``result`` (``(signals, sfreq)`` or ``func``'s output),
        ``time_simulation`` and ``time_processing`` (seconds, in the worker).
    """
    from tqdm import tqdm

    settings = _check_settings(settings)
    forbidden = {"mu", "noise", "seed", "verbose"} & set(sim_kwargs)
    if forbidden:
        raise ValueError(
            f"Pass {sorted(forbidden)} through settings / seed, not as keyword "
            "arguments."
        )
    allowed = {
        "duration",
        "dt",
        "a_target",
        "a_other",
        "coupling_strength",
        "sfreq_out",
    }
    unknown = set(sim_kwargs) - allowed
    if unknown:
        raise TypeError(f"Unknown simulation argument(s): {sorted(unknown)}.")
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(
        n_jobs, (int, np.integer)
    ):
        raise TypeError(f"n_jobs must be an int, got {type(n_jobs).__name__}.")
    n_jobs = int(n_jobs)
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or -1, got {n_jobs}.")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    conn = load_connectivity(connectivity, verbose=False)
    n_regions = conn.number_of_regions
    if regions is None:
        regions = range(n_regions)
    regions = [_check_region(r, n_regions) for r in np.atleast_1d(regions).tolist()]
    if not regions:
        raise ValueError("regions must not be empty.")
    if len(set(regions)) != len(regions):
        raise ValueError("regions contains duplicates.")
    # validate the simulation arguments once, here, rather than in the workers
    defaults = {
        k: p.default
        for k, p in inspect.signature(simulate_jansen_rit).parameters.items()
        if p.kind == p.KEYWORD_ONLY
    }
    for mu, noise in settings:
        args = dict(defaults, **sim_kwargs, mu=mu, noise=noise)
        _check_sim_args(
            *(
                args[k]
                for k in (
                    "duration",
                    "dt",
                    "mu",
                    "noise",
                    "a_target",
                    "a_other",
                    "coupling_strength",
                    "sfreq_out",
                )
            )
        )

    tasks = []
    for region in regions:
        for k, (mu, noise) in enumerate(settings):
            s = task_seed(seed, region, k)
            tasks.append(
                dict(
                    connectivity=str(connectivity),
                    region=region,
                    setting=k,
                    seed=s,
                    func=func,
                    sim_kwargs=dict(sim_kwargs, mu=mu, noise=noise, seed=s),
                )
            )
    n_jobs = min(n_jobs, len(tasks))
    logger.info(
        f"Simulating {len(tasks)} Jansen-Rit networks ({len(regions)} regions x "
        f"{len(settings)} settings) with {n_jobs} process(es)."
    )
    disable = logger.getEffectiveLevel() > logging.INFO
    results = [None] * len(tasks)
    with tqdm(total=len(tasks), desc="Jansen-Rit", unit="sim", disable=disable) as bar:
        if n_jobs == 1:
            for i, task in enumerate(tasks):
                results[i] = _run_task(task)
                bar.update()
        else:
            with ProcessPoolExecutor(n_jobs) as pool:
                futures = {pool.submit(_run_task, t): i for i, t in enumerate(tasks)}
                try:
                    for fut in as_completed(futures):
                        results[futures[fut]] = fut.result()
                        bar.update()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    return results


def _after_transient(signals, sfreq, region, setting, seed, *, transient):
    """Worker post-processing: drop the start-up, remove each region's median."""
    kept = signals[:, int(round(transient * sfreq)) :]
    return (kept - np.median(kept, axis=1, keepdims=True)).astype(np.float32)


@verbose
def simulate_regimes(
    regimes=None,
    *,
    duration=3.0,
    sfreq=500.0,
    transient=1.0,
    connectivity=DEFAULT_CONNECTIVITY,
    seed=0,
    n_jobs=2,
    verbose=None,
):
    """Simulate the Jansen-Rit regimes of :data:`JANSEN_RIT_REGIMES`.

    One network per regime, gain, input and noise level, every region in the
    regime; each region's output after the start-up transient is one waveform.

    Parameters
    ----------
    regimes : sequence of str | None
        Names of :data:`JANSEN_RIT_REGIMES`; None for all.
    duration : float
        Simulated time of each network (s), ``transient`` included.
    sfreq : float
        Output sampling rate (Hz); ``1000 / sfreq`` must be an integer (TVB
        integrates with 1 ms steps and averages over each output period).
    transient : float
        Start-up time dropped from every output (s).
    connectivity : str | path-like
        The connectome (see :func:`load_connectivity`).
    seed : int
        Global seed: the same seed gives the same waveforms.
    n_jobs : int
        Worker processes (see :func:`simulate_many`).
    %(verbose)s

    Returns
    -------
    waveforms : dict of str -> ndarray, shape (n_waveforms, n_times)
        Per regime, the regions' outputs (mV relative to their median), one
        block of ``n_regions`` rows per (A, mu, noise) combination, in the
        order of :data:`JANSEN_RIT_REGIMES`.

    Examples
    --------
    >>> from mne_brainforge.simulation import simulate_regimes
    >>> waveforms = simulate_regimes(["alpha"], duration=3.0)
    >>> waveforms["alpha"].shape  # 4 settings x 76 regions, 2 s at 500 Hz
    (304, 1000)
    """
    regimes = tuple(JANSEN_RIT_REGIMES) if regimes is None else tuple(regimes)
    unknown = sorted(set(regimes) - set(JANSEN_RIT_REGIMES))
    if unknown or not regimes:
        raise ValueError(
            f"regimes must be among {tuple(JANSEN_RIT_REGIMES)}, got {regimes}."
        )
    transient = check_number(transient, "transient", minimum=0)
    duration = check_number(duration, "duration", minimum=transient, strict=True)
    func = functools.partial(_after_transient, transient=transient)
    out = {}
    for name in regimes:
        # the seed follows the regime, not its place in ``regimes``: a subset
        # gives the same waveforms as the full set
        r = list(JANSEN_RIT_REGIMES).index(name)
        params = JANSEN_RIT_REGIMES[name]
        settings = [(mu, noise) for mu in params["mu"] for noise in params["noise"]]
        blocks = []
        for k, gain in enumerate(params["a"]):
            results = simulate_many(
                [0],  # every region has the gain: the target is immaterial
                settings,
                connectivity=connectivity,
                func=func,
                seed=task_seed(seed, r, k),
                n_jobs=n_jobs,
                a_target=gain,
                a_other=gain,
                duration=duration,
                sfreq_out=sfreq,
                verbose=verbose,
            )
            blocks += [res["result"] for res in results]
        out[name] = np.concatenate(blocks)
        logger.info(f"Jansen-Rit regime {name!r}: {len(out[name])} waveforms.")
    return out
