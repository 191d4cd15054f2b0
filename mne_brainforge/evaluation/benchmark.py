"""Benchmark inverse methods side by side on the same simulated EEG.

No inverse crime: the data are simulated through a head model that differs
from the one the methods are given (skull conductivity and thickness, electrode
positions jittered by a few mm), with source waveforms that no network was
trained on (ERP-like components and oscillatory bursts, plus held-out TVB
spikes when a waveform library is given).
"""

import json
import time
from collections import defaultdict
from pathlib import Path

import mne
import numpy as np
from mne.utils import logger, verbose
from tqdm.auto import tqdm

from .. import metrics
from ..head import (
    cortex_normal,
    fetch_fsaverage,
    jitter_electrodes,
    make_fsaverage_forward,
    make_montage_info,
    read_fsaverage_source_space,
    source_depths,
)
from ..head.parcellation import parcellate_source_space, source_graph
from ..inverse import CLASSICAL, MNEInverse
from ..simulation.dataset import EEGSimulator

#: The head the benchmark data are simulated with (methods get the default
#: template: conductivity (0.3, 0.006, 0.3) S/m, skull up to 7 mm thick).
TRUE_HEAD = dict(conductivity=(0.33, 0.0105, 0.33), skull_thickness=5.5e-3)
#: Standard deviation (m) of the electrode-position error, per axis.
ELECTRODE_JITTER = 0.004
SFREQ = 250.0
#: Benchmark sizes: ``default`` fits in ~10 min on 2 CPU cores, ``quick`` in a test.
SIZES = {
    "default": dict(
        montages=(16, 32, 64, 128), snrs=(0, 5, 10, 20), n_sources=(1, 2, 3), n_trials=2
    ),
    "quick": dict(montages=(32,), snrs=(10,), n_sources=(1, 2), n_trials=1),
}
#: Metrics where lower is better
LOWER_IS_BETTER = ("localization_error", "spatial_dispersion", "nmse")


class _WaveformSet:
    """Source waveforms in the shape EEGSimulator reads a library."""

    def __init__(self, spikes, sfreq, kinds):
        self.spikes, self.sfreq, self.kinds = spikes, sfreq, kinds
        self.background = np.zeros((0, 0))


def benchmark_waveforms(sfreq=SFREQ, *, n_each=60, library=None, seed=0):
    """Waveforms no network was trained on, for the benchmark.

    ERP-like: two or three Gaussian components of random sign, latency (50-350
    ms) and width (10-60 ms). Oscillatory bursts: 6-30 Hz with a Gaussian
    envelope (50-150 ms). With a waveform ``library``, its held-out spikes
    (every tenth, never used for training) are added.

    Parameters
    ----------
    sfreq : float
        Sampling rate (Hz) of the waveforms (0.5 s long).
    n_each : int
        Number of ERP-like waveforms and of oscillatory bursts.
    library : WaveformLibrary | None
        If given, its held-out spikes are added.
    seed : int
        Seed of the random waveforms.

    Returns
    -------
    waveforms : object
        With ``spikes`` (n, n_times), ``sfreq`` and ``kinds`` (n,): what
        :class:`~mne_brainforge.simulation.EEGSimulator` reads as a library.

    See Also
    --------
    run_benchmark

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.evaluation.benchmark import benchmark_waveforms
    >>> waveforms = benchmark_waveforms(250.0, n_each=10)
    >>> waveforms.spikes.shape  # 10 ERP-like, 10 bursts, 0.5 s at 250 Hz
    (20, 125)
    >>> np.unique(waveforms.kinds)
    array(['burst', 'erp'], dtype='<U5')
    """
    rng = np.random.default_rng(seed)
    t = np.arange(0, 0.5, 1 / sfreq)
    erps, bursts = [], []
    for _ in range(n_each):
        wave = np.zeros_like(t)
        for _ in range(rng.integers(2, 4)):
            latency, width = rng.uniform(0.05, 0.35), rng.uniform(0.01, 0.06)
            wave += (
                rng.choice([-1, 1])
                * rng.uniform(0.3, 1)
                * np.exp(-((t - latency) ** 2) / (2 * width**2))
            )
        erps.append(wave)
        freq, width = rng.uniform(6, 30), rng.uniform(0.05, 0.15)
        bursts.append(
            np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            * np.exp(-((t - 0.25) ** 2) / (2 * width**2))
        )
    waves, kinds = erps + bursts, ["erp"] * n_each + ["burst"] * n_each
    if library is not None:
        from scipy.signal import resample_poly

        held_out = library.spikes[::10]
        held_out = resample_poly(held_out, int(sfreq), int(library.sfreq), axis=-1)
        pad = np.zeros((len(held_out), len(t)))
        n = min(len(t), held_out.shape[1])
        pad[:, :n] = held_out[:, :n]
        waves += list(pad)
        kinds += ["tvb_spike"] * len(pad)
    return _WaveformSet(np.array(waves), sfreq, np.array(kinds))


def _noise_covariance(sim, info, rng, n_samples=20):
    """Noise covariance from noise-only windows of the benchmark's noise models."""
    chunks = []
    for i in range(n_samples):
        kind = sim.noise_kinds[i % len(sim.noise_kinds)]
        if kind == "spatial":
            noise = sim._brain_noise(rng)
        else:
            from ..simulation.synthesis import make_noise

            noise = make_noise(kind, len(sim.ch_names), sim.n_times, sim.sfreq, rng)
        noise = noise - noise.mean(0)
        chunks.append(noise / np.sqrt(np.mean(noise**2)))
    data = np.concatenate(chunks, axis=1)
    return mne.Covariance(
        data @ data.T / data.shape[1], info.ch_names, [], [], data.shape[1] - 1
    )


@verbose
def run_benchmark(
    methods=None,
    *,
    size="default",
    library=None,
    out_dir=None,
    inverse_crime=False,
    seed=0,
    montages=None,
    command=None,
    verbose=None,
):
    """Run inverse methods side by side on the same simulated data.

    Parameters
    ----------
    methods : dict of str -> callable | None
        ``name -> f(evoked, forward, noise_cov) -> SourceEstimate``. None runs
        MNE, dSPM, sLORETA, eLORETA and LCMV (:class:`MNEInverse`). Add e.g.
        ``{'BrainForge': ...}`` to compare a network.
    size : 'default' | 'quick' | dict
        Conditions (see :data:`SIZES`): montages (numbers of channels), SNRs
        (dB), numbers of simultaneous sources, trials per condition.
    library : WaveformLibrary | None
        Adds held-out TVB spikes to the benchmark waveforms.
    out_dir : path-like | None
        If given, write ``results.json``, ``results.md`` and PNG plots there.
    inverse_crime : bool
        Simulate with exactly the methods' head model and electrode positions
        (a check of the harness, not a benchmark).
    seed : int
        Seed of everything random.
    montages : list of int | None
        Restrict the montages (numbers of channels) of ``size``.
    command : str | None
        The command line to quote in the report.
    %(verbose)s

    Returns
    -------
    results : list of dict
        One record per (trial, method): the condition, the metrics of
        :func:`~mne_brainforge.metrics.evaluate` and ``time_s``.

    See Also
    --------
    mne_brainforge.inverse.MNEInverse, summarize, write_report
    mne_brainforge.compare_inverse_methods

    Notes
    -----
    Results of the classical methods: :doc:`/benchmarks/classical/results`.
    For a comparison on one simulated recording, see the tutorial
    :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    The classical methods and the pretrained network, quickly:

    >>> import mne_brainforge as bf
    >>> from mne_brainforge.evaluation.benchmark import run_benchmark
    >>> model = bf.load_pretrained()
    >>> def brainforge(evoked, forward, noise_cov):
    ...     return bf.apply_brainforge_inverse(evoked, forward, model, verbose=False)
    >>> records = run_benchmark({"BrainForge": brainforge}, size="quick",
    ...                         out_dir="bench")
    >>> sorted(records[0])[:4]
    ['auc', 'depth_mm', 'localization_error', 'method']
    """
    methods = methods or {name: MNEInverse(name) for name in CLASSICAL}
    cfg = dict(SIZES[size]) if isinstance(size, str) else dict(size)
    if montages:
        cfg["montages"] = tuple(montages)
    waveforms = benchmark_waveforms(library=library, seed=seed)
    subjects_dir = fetch_fsaverage()
    src = read_fsaverage_source_space()
    graph = source_graph(src, verbose=False)
    depths = source_depths()
    parcellation = parcellate_source_space(src, 500, seed=seed, verbose=False)
    records, examples = [], {}
    n_total = (
        len(cfg["montages"])
        * len(cfg["snrs"])
        * len(cfg["n_sources"])
        * cfg["n_trials"]
    )
    bar = tqdm(total=n_total, desc="benchmark trials", disable=n_total < 3)
    for n_ch in cfg["montages"]:
        rng = np.random.default_rng([seed, n_ch])
        info = make_montage_info(n_ch, SFREQ)
        fwd = make_fsaverage_forward(info, verbose=False)
        if inverse_crime:
            fwd_true = fwd
        else:
            info_true = jitter_electrodes(info, ELECTRODE_JITTER, rng)
            fwd_true = make_fsaverage_forward(info_true, **TRUE_HEAD, verbose=False)
        fwd_true = cortex_normal(fwd_true)
        sim = EEGSimulator(
            fwd_true,
            waveforms,
            parcellation,
            sfreq=SFREQ,
            duration=1.0,
            n_channels_range=(n_ch, n_ch),
            gain_sigma=0.0,
            noise_kinds=("white", "pink", "spatial"),
            verbose=False,
        )
        noise_cov = _noise_covariance(sim, info, rng)
        for snr in cfg["snrs"]:
            for n_src in cfg["n_sources"]:
                for trial in range(cfg["n_trials"]):
                    trial_rng = np.random.default_rng(
                        [seed, n_ch, int(snr * 10), n_src, trial]
                    )
                    draw = sim.draw(trial_rng, snr_db=snr, n_sources=n_src)
                    evoked = mne.EvokedArray(draw["eeg"], info, tmin=0.0, verbose=False)
                    evoked.set_eeg_reference(projection=True, verbose=False)
                    truth = _truth(draw, src)
                    condition = dict(
                        n_channels=n_ch,
                        snr_db=snr,
                        n_sources=n_src,
                        trial=trial,
                        depth_mm=float(depths[truth.centres].mean() * 1e3),
                    )
                    for name, method in methods.items():
                        t0 = time.perf_counter()
                        try:
                            stc = method(evoked, fwd, noise_cov)
                        except (
                            Exception
                        ) as err:  # one failing method must not end the run
                            logger.warning(f"{name} failed on {condition}: {err}")
                            records.append(
                                dict(
                                    condition,
                                    method=name,
                                    time_s=np.nan,
                                    error=str(err),
                                    **dict.fromkeys(metrics.METRICS, np.nan),
                                )
                            )
                            continue
                        elapsed = time.perf_counter() - t0
                        scores = metrics.evaluate(
                            stc, truth, src, graph, parcellation.labels
                        )
                        records.append(
                            dict(condition, method=name, time_s=elapsed, **scores)
                        )
                        if n_src == 1 and snr == max(cfg["snrs"]) and trial == 0:
                            examples.setdefault(n_ch, {"truth": truth.stc})[name] = stc
                    bar.update()
    bar.close()
    if out_dir is not None:
        write_report(
            records,
            out_dir,
            examples=examples,
            subjects_dir=subjects_dir,
            command=command,
        )
    return records


def _truth(draw, src):
    vertices = [s["vertno"] for s in src]
    stc = mne.SourceEstimate(
        draw["source_data"], vertices, 0.0, 1 / SFREQ, subject="fsaverage"
    )
    return metrics.GroundTruth(
        stc,
        [p.sources for p in draw["patches"]],
        [p.centre_index for p in draw["patches"]],
    )


def summarize(records, by):
    """Median and mean of every metric per method and condition group.

    Parameters
    ----------
    records : list of dict
        Output of :func:`run_benchmark`.
    by : tuple of str
        Condition keys to group by, e.g. ``('n_sources', 'snr_db')``.

    Returns
    -------
    summary : dict
        ``{group: {method: {metric: (median, mean)}}}``.

    See Also
    --------
    run_benchmark, write_report

    Examples
    --------
    >>> from mne_brainforge.evaluation.benchmark import summarize
    >>> summary = summarize(records, ("n_sources", "snr_db"))
    >>> median, mean = summary[(1, 10)]["sLORETA"]["localization_error"]
    """
    groups = defaultdict(lambda: defaultdict(list))
    for rec in records:
        groups[tuple(rec[k] for k in by)][rec["method"]].append(rec)
    out = {}
    for group, per_method in sorted(groups.items()):
        out[group] = {}
        for method, recs in per_method.items():
            out[group][method] = {
                m: (float(np.nanmedian(v)), float(np.nanmean(v)))
                for m in metrics.METRICS + ("time_s",)
                for v in [np.array([r[m] for r in recs], float)]
            }
    return out


_SHORT = {
    "localization_error": "LE mm",
    "spatial_dispersion": "SD mm",
    "auc": "AUC",
    "nmse": "nMSE",
    "temporal_correlation": "corr",
    "precision": "prec",
    "recall": "recall",
    "time_s": "time s",
}


def _markdown(summary, by, metric_names):
    methods = list(next(iter(summary.values())))
    head = [*by, "method", *(_SHORT[m] for m in metric_names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group, per_method in summary.items():
        for method in methods:
            if method not in per_method:
                continue
            cells = [
                f"{per_method[method][m][0]:.3g} ({per_method[method][m][1]:.3g})"
                for m in metric_names
            ]
            lines.append("| " + " | ".join([*map(str, group), method, *cells]) + " |")
    return "\n".join(lines)


def write_report(records, out_dir, *, examples=None, subjects_dir=None, command=None):
    """Write results.json, results.md and PNG figures of a benchmark run.

    Parameters
    ----------
    records : list of dict
        Output of :func:`run_benchmark`.
    out_dir : path-like
        Output folder (created if needed).
    examples : dict | None
        ``{n_channels: {'truth': stc, method: stc, ...}}``: estimates of one
        case to render on the cortex (``cortex_example.png``); None for no
        such figure.
    subjects_dir : path-like | None
        Where ``fsaverage`` is, for the cortex figure.
    command : str | None
        The command line to quote in the report.

    See Also
    --------
    run_benchmark : Calls this with ``out_dir``.

    Examples
    --------
    >>> from mne_brainforge.evaluation.benchmark import run_benchmark, write_report
    >>> records = run_benchmark(size="quick")
    >>> write_report(records, "bench", command="run_benchmark(size='quick')")
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(records, indent=0))
    shown = (
        "localization_error",
        "spatial_dispersion",
        "auc",
        "nmse",
        "temporal_correlation",
        "precision",
        "recall",
    )
    deep = [
        dict(
            r,
            depth=(
                "deep (> 20 mm)" if r["depth_mm"] > 20 else "superficial (<= 20 mm)"
            ),
        )
        for r in records
        if r["n_sources"] == 1
    ]
    sections = [
        "# Benchmark of inverse methods",
        "",
        f"Command: `{command or 'brainforge benchmark'}`. Cells: median (mean) over trials. "
        "Data simulated with a different head model (skull conductivity "
        f"{TRUE_HEAD['conductivity'][1]} vs 0.006 S/m, skull up to "
        f"{TRUE_HEAD['skull_thickness'] * 1e3:g} vs 7 mm, electrodes jittered by "
        f"{ELECTRODE_JITTER * 1e3:g} mm per axis) and waveforms unseen in training "
        "(ERP-like, oscillatory bursts, held-out TVB spikes).",
        "",
        "## By number of sources and SNR (all montages)",
        "",
        _markdown(
            summarize(records, ("n_sources", "snr_db")), ("n_sources", "snr_db"), shown
        ),
        "",
        "## By montage (all SNRs and numbers of sources)",
        "",
        _markdown(summarize(records, ("n_channels",)), ("n_channels",), shown),
        "",
        "## One source, by depth below the inner skull",
        "",
        _markdown(summarize(deep, ("depth",)), ("depth",), shown)
        if deep
        else "(no single-source trials)",
        "",
        "## Wall time per call (s)",
        "",
        _markdown(summarize(records, ("n_channels",)), ("n_channels",), ("time_s",)),
        "",
        "![metrics vs SNR](metrics_vs_snr.png)",
        "",
    ]
    _plot_vs_snr(records, out_dir / "metrics_vs_snr.png")
    if examples:
        n_ch = max(examples)
        try:
            _plot_cortex(examples[n_ch], subjects_dir, out_dir / "cortex_example.png")
            sections += [
                f"![one single-source case, {n_ch} channels](cortex_example.png)",
                "",
            ]
        except RuntimeError as err:  # no display and no Xvfb
            logger.warning(f"Skipping the cortex figure: {err}")
    (out_dir / "results.md").write_text("\n".join(sections))


def _plot_vs_snr(records, fname):
    import matplotlib.pyplot as plt

    shown = ("localization_error", "spatial_dispersion", "auc")
    multi = {
        "1 source": [r for r in records if r["n_sources"] == 1],
        "2-3 sources": [r for r in records if r["n_sources"] > 1],
    }
    fig, axes = plt.subplots(
        len(multi),
        len(shown),
        figsize=(4 * len(shown), 3.2 * len(multi)),
        squeeze=False,
    )
    for row, (label, recs) in enumerate(multi.items()):
        if not recs:
            continue
        summary = summarize(recs, ("snr_db",))
        snrs = [g[0] for g in summary]
        for col, metric in enumerate(shown):
            ax = axes[row, col]
            for method in summary[next(iter(summary))]:
                ax.plot(
                    snrs,
                    [summary[(s,)][method][metric][1] for s in snrs],
                    "o-",
                    label=method,
                )
            ax.set(xlabel="SNR (dB)", title=f"{_SHORT[metric]}, {label}")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)


def _plot_cortex(example, subjects_dir, fname):
    import matplotlib.pyplot as plt

    from ..viz import ensure_3d_display

    ensure_3d_display()
    truth = example["truth"]
    n_lh = len(truth.vertices[0])
    peak_hemi = (
        "lh"
        if np.abs(truth.data[:n_lh]).max() > np.abs(truth.data[n_lh:]).max()
        else "rh"
    )
    names = ["truth"] + [m for m in example if m != "truth"]
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 4.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        stc = example[name]
        energy = stc.copy()
        energy.data = np.sqrt(np.mean(stc.data**2, axis=1, keepdims=True))
        # thresholds relative to each map's own maximum: percentiles of a focal
        # (mostly zero) map are all zero and would hide it
        peak = energy.data.max() or 1.0
        brain = energy.plot(
            subject="fsaverage",
            subjects_dir=subjects_dir,
            hemi=peak_hemi,
            views=["lat", "med"],
            size=(300, 450),
            background="white",
            time_viewer=False,
            colorbar=False,
            clim=dict(kind="value", lims=[0.25 * peak, 0.5 * peak, peak]),
            verbose=False,
        )
        ax.imshow(brain.screenshot())
        brain.close()
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(
        "Source energy (RMS over the window), lateral and medial views", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)
