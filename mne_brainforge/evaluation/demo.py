"""The end-to-end job that ``brainforge demo`` runs.

Template head -> forward model for a montage -> simulated EEG with known
sources (through a *different* head model: no inverse crime) -> BrainForge next
to sLORETA, eLORETA and dSPM -> a metrics table and cortex figures.
"""

import json
import time
from pathlib import Path

import mne
import numpy as np
from mne.utils import logger, verbose

from ..head import (
    cortex_normal,
    fetch_fsaverage,
    fsaverage_trans_path,
    jitter_electrodes,
    make_fsaverage_forward,
    make_montage_info,
)

#: The methods the demo compares (names of :func:`~mne_brainforge.inverse.compare_inverse_methods`).
DEMO_METHODS = ("brainforge", "sLORETA", "eLORETA", "dSPM")
#: Metrics shown in the demo's table (keys of :func:`~mne_brainforge.metrics.evaluate`).
DEMO_METRICS = (
    "localization_error",
    "spatial_dispersion",
    "auc",
    "temporal_correlation",
)
_TITLES = {"brainforge": "BrainForge"}


def _resolve_model(model):
    """A loaded BrainForgeModel (loaded once: it is not part of the timed calls)."""
    from ..inverse._core import _load_model
    from ..weights import DEFAULT_WEIGHTS, list_weights

    if model is None and DEFAULT_WEIGHTS not in list_weights():
        raise ValueError(
            f"The pretrained weights {DEFAULT_WEIGHTS!r} are not registered in this "
            "installation; pass a model file (brainforge demo --model PATH, or "
            "run_demo(..., model=PATH)) or train one (brainforge train)."
        )
    return _load_model(model)


def _model_description(model, given):
    from ..weights import DEFAULT_WEIGHTS

    what = (
        f"the pretrained model `{DEFAULT_WEIGHTS}`"
        if given is None
        else (f"`{given}`" if isinstance(given, (str, Path)) else "a given model")
    )
    training = model.config.get("training", {})
    steps = (
        f", {training['steps_done']} training steps" if "steps_done" in training else ""
    )
    n_params = sum(p.numel() for p in model.net.parameters())
    return (
        f"{what}: {model.parcellation.n_regions} regions, {model.n_times} samples at "
        f"{model.sfreq:g} Hz, {n_params:,} parameters{steps}"
    )


@verbose
def run_demo(
    out_dir,
    *,
    montage="biosemi64",
    model=None,
    n_sources=(1, 2, 3),
    n_trials=1,
    snr_db=10.0,
    seed=0,
    methods=DEMO_METHODS,
    figures=True,
    head_figures=True,
    command=None,
    verbose=None,
):
    """Run BrainForge and classical inverses on simulated EEG with known sources.

    The template head (:func:`~mne_brainforge.datasets.fetch_fsaverage`) gives
    the forward model the methods use. The EEG is simulated without the
    inverse crime, as in the benchmark
    (:func:`~mne_brainforge.evaluation.benchmark.run_benchmark`): through
    another head model (:data:`~mne_brainforge.evaluation.benchmark.TRUE_HEAD`
    skull conductivity and thickness, electrode positions jittered by
    :data:`~mne_brainforge.evaluation.benchmark.ELECTRODE_JITTER` per axis),
    with waveforms no network was trained on
    (:func:`~mne_brainforge.evaluation.benchmark.benchmark_waveforms`: ERP-like
    components and oscillatory bursts) and white, pink or spatially coloured
    brain noise. Each case (1, 2, 3 simultaneous sources by default) is
    estimated by every method through
    :func:`~mne_brainforge.inverse.compare_inverse_methods` and scored with
    :func:`~mne_brainforge.metrics.evaluate`. No network access
    and no training.

    Parameters
    ----------
    out_dir : path-like
        Folder for the outputs (created).
    montage : str | path-like
        An MNE standard montage name (:func:`mne.channels.get_builtin_montages`)
        or a montage file.
    model : None | str | path-like | BrainForgeModel
        The network: None for the pretrained template model
        (:func:`mne_brainforge.load_pretrained`), a registered name, a model
        file or a model (see :func:`~mne_brainforge.apply_brainforge_inverse`).
    n_sources : sequence of int
        The cases: numbers of simultaneous sources (patches).
    n_trials : int
        Simulated data sets per case (the first one is shown in the figure).
    snr_db : float
        Signal-to-noise ratio (dB, power) of the simulated EEG.
    seed : int
        Seed of everything random (electrode jitter, sources, waveforms, noise).
    methods : sequence of str
        Methods of :func:`~mne_brainforge.inverse.compare_inverse_methods`.
    figures : bool
        Render the cortex maps of each case (MNE's 3D viewer, off screen; a
        virtual X server is started if there is no display).
    head_figures : bool
        Also render the head model with the electrodes (alignment) and the EEG
        sensitivity map of the forward model (with ``figures`` only).
    command : str | None
        The command line to quote in the report.
    %(verbose)s

    Returns
    -------
    outputs : dict of Path
        ``forward`` (the montage's ``-fwd.fif``), ``results`` (``results.md``:
        the metrics tables), ``records`` (``results.json``: every method on
        every simulated data set), and with ``figures`` ``case_<n>sources``
        (PNG of the true sources and each method's estimate), ``alignment``
        and ``sensitivity`` (PNGs, with ``head_figures``).

    Notes
    -----
    Time per call is the wall time of one
    :func:`~mne_brainforge.inverse.compare_inverse_methods` call for that
    method alone: for the classical methods it includes making and preparing
    the inverse operator, for BrainForge the forward-dependent set-up (the
    model itself is loaded once beforehand).
    """
    from .. import metrics
    from ..datasets import read_fsaverage_source_space
    from ..head import parcellate_source_space, source_graph
    from ..inverse import compare_inverse_methods
    from ..simulation.dataset import EEGSimulator
    from .benchmark import (
        ELECTRODE_JITTER,
        SFREQ,
        TRUE_HEAD,
        _noise_covariance,
        _truth,
        benchmark_waveforms,
    )

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_sources = tuple(int(n) for n in np.atleast_1d(n_sources))
    if not n_sources or min(n_sources) < 1 or int(n_trials) < 1:
        raise ValueError("n_sources must be numbers >= 1 and n_trials >= 1.")
    bf_model = (
        _resolve_model(model)
        if any(m.lower() == "brainforge" for m in methods)
        else None
    )
    subjects_dir = fetch_fsaverage()
    info = make_montage_info(montage, SFREQ)
    tag = Path(str(montage)).stem if Path(str(montage)).is_file() else str(montage)
    logger.info(
        f"Forward model of the template for {tag} ({len(info.ch_names)} channels)"
    )
    fwd = make_fsaverage_forward(info, verbose=False)
    outputs = {"forward": out_dir / f"fsaverage-{tag}-fwd.fif"}
    mne.write_forward_solution(outputs["forward"], fwd, overwrite=True, verbose=False)
    info = mne.pick_info(
        info, mne.pick_channels(info.ch_names, fwd["info"]["ch_names"], ordered=True)
    )

    logger.info("Simulating through another head model (skull, electrode positions)")
    rng = np.random.default_rng([seed, 0])
    info_true = jitter_electrodes(info, ELECTRODE_JITTER, rng)
    fwd_true = make_fsaverage_forward(info_true, **TRUE_HEAD, verbose=False)
    fwd_true = cortex_normal(fwd_true)
    src = read_fsaverage_source_space()
    graph = source_graph(src, verbose=False)
    parcellation = parcellate_source_space(src, 500, seed=seed, verbose=False)
    n_ch = len(info.ch_names)
    sim = EEGSimulator(
        fwd_true,
        benchmark_waveforms(seed=seed),
        parcellation,
        sfreq=SFREQ,
        duration=1.0,
        n_channels_range=(n_ch, n_ch),
        gain_sigma=0.0,
        noise_kinds=("white", "pink", "spatial"),
        max_sources=max(n_sources),
        verbose=False,
    )
    noise_cov = _noise_covariance(sim, info, rng)

    records, cases = [], {}
    for n_src in n_sources:
        for trial in range(int(n_trials)):
            draw = sim.draw(
                np.random.default_rng([seed, n_src, trial, int(round(snr_db * 10))]),
                snr_db=float(snr_db),
                n_sources=n_src,
            )
            evoked = mne.EvokedArray(draw["eeg"], info, tmin=0.0, verbose=False)
            evoked.set_eeg_reference(projection=True, verbose=False)
            truth = _truth(draw, src)
            condition = dict(
                n_sources=n_src,
                snr_db=float(snr_db),
                trial=trial,
                noise=draw["noise_kind"],
            )
            stcs = {}
            for name in methods:
                t0 = time.perf_counter()
                stc = compare_inverse_methods(
                    evoked, fwd, noise_cov, [name], model=bf_model, verbose=False
                )
                elapsed = time.perf_counter() - t0
                key, stc = next(iter(stc.items()))
                title = _TITLES.get(key, key)
                stcs[title] = stc
                scores = metrics.evaluate(stc, truth, src, graph, parcellation.labels)
                records.append(dict(condition, method=title, time_s=elapsed, **scores))
                logger.info(
                    f"{n_src} source(s), trial {trial}: {title} "
                    f"LE {scores['localization_error']:.1f} mm, "
                    f"AUC {scores['auc']:.3f}, {elapsed:.2f} s"
                )
            if trial == 0:
                cases[n_src] = (truth, stcs)

    if figures:
        from ..viz import ensure_3d_display

        ensure_3d_display()
        for n_src, (truth, stcs) in cases.items():
            key = f"case_{n_src}sources"
            outputs[key] = (
                out_dir / f"cortex-{n_src}source{'s' if n_src > 1 else ''}.png"
            )
            _plot_case(truth, stcs, subjects_dir, outputs[key])
        if head_figures:
            outputs.update(_head_figures(info, fwd, subjects_dir, out_dir, tag))

    outputs["records"] = out_dir / "results.json"
    outputs["records"].write_text(json.dumps(records, indent=0))
    outputs["results"] = out_dir / "results.md"
    description = _model_description(bf_model, model) if bf_model is not None else None
    outputs["results"].write_text(
        _report(
            records,
            outputs,
            out_dir,
            montage=tag,
            n_channels=n_ch,
            snr_db=snr_db,
            model=description,
            command=command,
            wall_s=time.perf_counter() - t_start,
        )
    )
    for key, path in outputs.items():
        logger.info(f"Wrote {key}: {path}")
    return outputs


def _energy(stc):
    """One-sample estimate of the RMS over time of each source (what the metrics score)."""
    return mne.SourceEstimate(
        np.sqrt(np.mean(stc.data**2, axis=1, keepdims=True)),
        stc.vertices,
        tmin=0.0,
        tstep=stc.tstep,
        subject=stc.subject,
    )


def _plot_case(truth, stcs, subjects_dir, fname):
    """Energy maps of the truth and of every estimate, side by side on the cortex."""
    import matplotlib.pyplot as plt

    from ..inverse import plot_inverse_comparison

    maps = {name: _energy(stc) for name, stc in {"truth": truth.stc, **stcs}.items()}
    fig = plot_inverse_comparison(
        maps, subjects_dir, hemi="split", views=["lat", "med", "ven"], size=(260, 190)
    )
    try:
        for ax, (name, stc) in zip(fig.axes, maps.items()):
            ax.set_title(f"{name} (max {stc.data.max():.3g})", fontsize=10)
        fig.suptitle(
            "Source energy (RMS over the 1 s window), each map on its own scale: "
            "colour from 20% of its maximum",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the suptitle
        fig.savefig(fname, dpi=100)
    finally:
        plt.close(fig)


def _head_figures(info, fwd, subjects_dir, out_dir, tag):
    """The head model with the electrodes, and the EEG sensitivity map."""
    from ..viz import save_screenshot

    outputs = {"alignment": out_dir / f"fsaverage-{tag}-alignment.png"}
    fig = mne.viz.plot_alignment(
        info,
        trans=fsaverage_trans_path(),
        subject="fsaverage",
        subjects_dir=subjects_dir,
        eeg="projected",
        coord_frame="mri",
        surfaces=dict(head=0.25, outer_skull=0.35, inner_skull=0.5, pial=1.0),
        verbose=False,
    )
    mne.viz.set_3d_view(fig, azimuth=135, elevation=70, distance=0.55)
    save_screenshot(fig, outputs["alignment"])
    # How strongly each cortical source reaches this montage: the classic
    # first look at a forward model.
    outputs["sensitivity"] = out_dir / f"fsaverage-{tag}-sensitivity.png"
    smap = mne.sensitivity_map(fwd, ch_type="eeg", mode="fixed", verbose=False)
    brain = smap.plot(
        subject="fsaverage",
        subjects_dir=subjects_dir,
        hemi="split",
        views=["lat", "med"],
        size=(900, 700),
        background="white",
        time_viewer=False,
        clim=dict(kind="percent", lims=[5, 50, 95]),
        verbose=False,
    )
    save_screenshot(brain, outputs["sensitivity"])
    return outputs


def _case_table(records):
    from .benchmark import _SHORT

    head = [
        "sources",
        "trial",
        "noise",
        "method",
        *(_SHORT[m] for m in DEMO_METRICS),
        "time s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in records:
        cells = [f"{rec[m]:.3g}" for m in (*DEMO_METRICS, "time_s")]
        lines.append(
            "| "
            + " | ".join(
                [
                    str(rec["n_sources"]),
                    str(rec["trial"]),
                    str(rec["noise"]),
                    rec["method"],
                    *cells,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _report(
    records, outputs, out_dir, *, montage, n_channels, snr_db, model, command, wall_s
):
    from .benchmark import ELECTRODE_JITTER, TRUE_HEAD, _markdown, summarize

    sections = [
        "# BrainForge vs classical inverses on simulated EEG",
        "",
        f"Command: `{command or 'brainforge demo'}`. Template head (fsaverage), montage "
        f"{montage} ({n_channels} channels), SNR {snr_db:g} dB, 1 s at 250 Hz. No inverse "
        "crime: the EEG was simulated with another head model (skull conductivity "
        f"{TRUE_HEAD['conductivity'][1]} vs 0.006 S/m, skull up to "
        f"{TRUE_HEAD['skull_thickness'] * 1e3:g} vs 7 mm, electrodes jittered by "
        f"{ELECTRODE_JITTER * 1e3:g} mm per axis) than the one the methods get, with "
        "waveforms no network was trained on (ERP-like components, oscillatory bursts).",
        "",
    ]
    if model:
        sections += [f"BrainForge: {model}.", ""]
    sections += [
        "LE: localization error (mm, lower is better); SD: spatial dispersion (mm, lower "
        "is better); AUC: area under the ROC curve of the energy map against the true "
        "patches (higher is better); corr: temporal correlation with the true time "
        "courses; time: one `compare_inverse_methods` call for that method "
        "(classical: including the inverse operator; the BrainForge model is loaded "
        "beforehand).",
        "",
        "## Each simulated data set",
        "",
        _case_table(records),
        "",
        "## All cases, median (mean)",
        "",
        _markdown(summarize(records, ()), (), (*DEMO_METRICS, "time_s")),
        "",
    ]
    figures = [(k, p) for k, p in outputs.items() if k.startswith("case_")]
    if figures:
        sections += [
            "## Cortex maps",
            "",
            "Energy (RMS over the window) of the true sources and of each "
            "method's estimate, as the metrics score them; each map has its own "
            "colour scale (units differ: BrainForge and eLORETA give dipole "
            "moments, dSPM and sLORETA noise-normalised values).",
            "",
        ]
        for key, path in figures:
            n = key.split("_")[1].replace("sources", "")
            sections += [f"![{n} source(s)]({Path(path).relative_to(out_dir)})", ""]
    sections += [f"Total wall time of the demo: {wall_s:.0f} s.", ""]
    return "\n".join(sections)
