"""Benchmark v2: every method on test data that share nothing with training.

The data come from :mod:`~mne_brainforge.evaluation.testdata` (its own source
model, waveforms and noise; truth heads no method gets), through the one
runner of :mod:`~mne_brainforge.evaluation.runner`; the report states every
cell where BrainForge loses as plainly as where it wins.
"""

import dataclasses
import time
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose

from ..head.montage import BIOSEMI_BY_COUNT
from ..utils import atomic_write_text, check_int, check_option, fill_doc
from . import report
from .methods import METHODS, make_methods
from .runner import SCENARIOS, case_key, run_evaluation


def _scenario(scenario, montages, n_trials):
    if isinstance(scenario, str):
        check_option("scenario", scenario, tuple(SCENARIOS))
        scenario = SCENARIOS[scenario]
    changes = {}
    if montages is not None:
        changes["montages"] = tuple(
            BIOSEMI_BY_COUNT.get(m, m) if not isinstance(m, str) else m
            for m in montages
        )
    if n_trials is not None:
        changes["n_trials"] = check_int(n_trials, "n_trials", 1)
    return dataclasses.replace(scenario, **changes)


@verbose
def run_benchmark(
    scenario="default",
    *,
    methods=METHODS,
    model=None,
    out_dir="brainforge-benchmark",
    seed=0,
    montages=None,
    n_trials=None,
    figures=True,
    command=None,
    max_time=None,
    verbose=None,
):
    """Run the benchmark and write its report.

    Parameters
    ----------
    scenario : str | Scenario
        ``'default'`` (the README's tables), ``'quick'`` (a test) or a
        :class:`~mne_brainforge.evaluation.runner.Scenario`.
    methods : sequence of str | dict
        Names of :data:`~mne_brainforge.evaluation.methods.METHODS`, or a dict
        name -> ``method(evoked, forward, noise_cov)``.
    model : BrainForgeModel | str | path-like | None
        The network of ``'BrainForge'`` (None: the pretrained model).
    out_dir : path-like
        Where ``results.md``, ``results.json`` and the PNGs go (created); its
        ``checkpoint.json`` (the records so far) lets a stopped run resume.
    seed : int
        Seed of the whole run.
    montages : sequence of str | int | None
        Replace the scenario's montages (names, or BioSemi channel counts).
    n_trials : int | None
        Replace the scenario's cases per cell.
    figures : bool
        Also draw the cortex figures of example cases (needs 3D rendering).
    command : str | None
        The command that ran it (recorded).
    max_time : float | None
        Start no new case after this many seconds and report the cases run so
        far, marked partial (``0``: report what ``checkpoint.json`` holds).
    %(verbose)s

    Returns
    -------
    records : list of dict
        Every (case, method) result (see
        :func:`~mne_brainforge.evaluation.runner.run_evaluation`).

    Examples
    --------
    >>> from mne_brainforge.evaluation.benchmark import run_benchmark
    >>> records = run_benchmark("quick", methods=["sLORETA", "MxNE"], figures=False)
    """
    scenario = _scenario(scenario, montages, n_trials)
    if not isinstance(methods, dict):
        methods = make_methods(methods, model=model)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, examples = run_evaluation(
        scenario,
        methods,
        seed=seed,
        checkpoint=out_dir / "checkpoint.json",
        max_time=max_time,
    )
    wall = time.perf_counter() - t0
    if not records:
        raise RuntimeError(
            f"No case ran within max_time={max_time} s and {out_dir / 'checkpoint.json'}"
            " holds none of these settings: raise max_time or drop it."
        )
    write_benchmark_report(
        records,
        out_dir,
        examples=examples if figures else None,
        command=command,
        n_planned=len(scenario.cells()),
        extra=dict(scenario=dataclasses.asdict(scenario), wall_time_s=wall),
    )
    logger.info(f"Benchmark: {len(records)} results in {wall:.0f} s -> {out_dir}")
    return records


@fill_doc
def write_benchmark_report(
    records, out_dir, *, examples=None, command=None, n_planned=None, extra=None
):
    """``results.md`` (tables, verdicts, timings), ``results.json`` and PNGs.

    Parameters
    ----------
    %(records)s
    out_dir : path-like
        Output folder (created).
    examples : dict | None
        Number of sources -> estimates of one case (cortex figures); None for
        none.
    command : str | None
        The command that made the records.
    n_planned : int | None
        The cases the scenario plans; with fewer in ``records`` the report is
        titled partial and says how many ran.
    extra : dict | None
        More JSON-able facts for ``results.json``.

    Returns
    -------
    fname : Path
        The markdown report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = list(dict.fromkeys(r["method"] for r in records))
    n_cases = len({case_key(r) for r in records})
    extra = dict(extra or {}, n_cases=n_cases)
    report.write_results(records, out_dir, extra=extra, command=command)
    report.plot_by_snr(records, out_dir / "le_vs_snr.png")
    title = "# Benchmark v2 results"
    if n_planned is not None and n_cases < n_planned:
        title += f": PARTIAL ({n_cases} of {n_planned} cases)"
    lines = [
        title,
        "",
        f"Command: `{command}`" if command else "",
        "",
        "Cells: mean **localization error (mm) / spatial dispersion (mm) / AUC**; "
        "the lowest LE of each row in bold. Test data from "
        "`mne_brainforge.evaluation.testdata` (independent of training), through "
        "truth heads the methods never get.",
        "",
        "## By number of sources and SNR",
        "",
        _by_sources_and_snr(records, methods),
        "",
        *_largest_peaks_section(records, methods),
        "## By montage (all SNRs and source counts)",
        "",
        report.markdown_table(records, lambda r: r["n_channels"], "channels", methods),
        "",
        "## By truth head",
        "",
        report.markdown_table(records, lambda r: r["head"], "truth head", methods),
        "",
        "## Other metrics (all cases)",
        "",
        _other_metrics(records, methods),
        "",
        "## Time per call",
        "",
        report.timing_table(records, methods),
        "",
    ]
    if "BrainForge" in methods:
        lines += ["## Where BrainForge wins and loses (mean LE per cell)", ""]
        lines += report.verdicts(
            records,
            "BrainForge",
            _sources_and_snr,
            "sources | SNR dB",
        )
        lines.append("")
    if examples:
        lines += _cortex_figures(examples, out_dir)
    fname = out_dir / "results.md"
    atomic_write_text(fname, "\n".join(lines) + "\n")
    return fname


def _sources_and_snr(record):
    """The report's main grouping: (source group, SNR)."""
    return report.source_group(record["n_sources"]), record["snr_db"]


def _by_sources_and_snr(records, methods, metrics=report.CELL_METRICS):
    return report.markdown_table(
        records, _sources_and_snr, "sources | SNR dB", methods, metrics=metrics
    )


def _largest_peaks_section(records, methods):
    """The classic LE (the ``n_sources`` largest peaks) and the number of peaks."""
    if not any("largest_peaks_error" in r for r in records):
        return []  # records of a run before these metrics
    return [
        "## Localization error of the largest peaks, by number of sources and SNR",
        "",
        "The LE above may match a true source with any local maximum above 10 % of "
        "the map's maximum, however many there are; here only the map's "
        "`n_sources` largest maxima (at least 10 mm apart) count, as in the classic "
        "LE (one source: the distance to the global maximum). Cells: mean **LE of "
        "the largest peaks (mm) / number of peaks above 10 %**; the lowest LE in "
        "bold.",
        "",
        _by_sources_and_snr(records, methods, ("largest_peaks_error", "n_peaks")),
        "",
    ]


def _other_metrics(records, methods):
    names = ("temporal_correlation", "emd", "average_precision", "time_s")
    header = "| metric | " + " | ".join(methods) + " |"
    lines = [header, "|---" * (len(methods) + 1) + "|"]
    for name in names:
        cells = []
        for method in methods:
            values = [r[name] for r in records if r["method"] == method]
            values = [v for v in values if v is not None and np.isfinite(v)]
            cells.append(f"{np.mean(values):.3g}" if values else "-")
        label = report.SHORT.get(name, name)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cortex_figures(examples, out_dir):
    """Cortex PNGs of the example cases (skipped with a note without 3D rendering)."""
    import matplotlib.pyplot as plt

    from ..viz import plot_source_maps

    lines = ["## Example cases (source energy, each map on its own scale)", ""]
    for n_src, stcs in sorted(examples.items()):
        fname = out_dir / f"cortex-{n_src}-sources.png"
        try:
            fig = plot_source_maps(
                stcs, time="energy", views=["lat", "med"], size=(260, 190), fname=fname
            )
        except Exception as err:  # no 3D rendering here: say so in the report
            logger.warning(f"Cortex figure not drawn ({type(err).__name__}: {err})")
            lines.append(f"- {n_src} source(s): figure not drawn ({err}).")
            continue
        plt.close(fig)
        lines.append(f"![{n_src} source(s)]({fname.name})")
    return [*lines, ""]
