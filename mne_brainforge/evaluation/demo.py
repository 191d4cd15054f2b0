"""The main job end to end: simulated and real EEG, BrainForge and every strong method.

A configuration of the one runner (the ``demo`` scenario: 64 channels through a
truth head with displaced electrodes and another skull) plus the real
median-nerve SEP that spharapy ships, scored against the contralateral S1 hand
region. Minutes on two CPU cores, no network access.
"""

import dataclasses
import time
from pathlib import Path

import mne
from mne.utils import logger, verbose

from ..head import make_fsaverage_forward, make_montage_info
from ..utils import atomic_write_text, cached_file, check_int, get_data_path
from .benchmark import write_benchmark_report
from .methods import METHODS, make_methods
from .runner import SCENARIOS, run_evaluation

#: Methods of the demo (all of the benchmark's but LCMV and MNE, the slowest and
#: the blurriest).
DEMO_METHODS = tuple(m for m in METHODS if m not in ("LCMV", "MNE"))


@verbose
def run_demo(
    out_dir="brainforge-demo",
    *,
    montage="biosemi64",
    model=None,
    methods=DEMO_METHODS,
    n_sources=(1, 2, 3),
    n_trials=2,
    snr_db=10.0,
    seed=0,
    figures=True,
    real_data=True,
    command=None,
    verbose=None,
):
    """Run the demo: simulated and real EEG through every method, tables and figures.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created): ``results.md``, ``results.json``, PNGs.
    montage : str
        Montage of the simulation (a name of MNE's standard montages).
    model : BrainForgeModel | str | path-like | None
        The network of ``'BrainForge'`` (None: the pretrained model).
    methods : sequence of str
        Names of :data:`~mne_brainforge.evaluation.methods.METHODS`.
    n_sources : sequence of int
        Numbers of simultaneous sources of the simulated cases.
    n_trials : int
        Cases per number of sources.
    snr_db : float
        SNR of the simulated cases (dB).
    seed : int
        Seed of the simulation.
    figures : bool
        Draw the cortex figures (needs 3D rendering; Xvfb is started headless).
    real_data : bool
        Also estimate the real SEP (needs ``spharapy``).
    command : str | None
        The command that ran it (recorded).
    %(verbose)s

    Returns
    -------
    outputs : dict of str -> Path
        ``results`` (the markdown report), ``json`` and the figures.

    Examples
    --------
    >>> from mne_brainforge.evaluation.demo import run_demo
    >>> outputs = run_demo("demo-out")
    >>> print(outputs["results"].read_text())
    """
    out_dir = Path(out_dir)
    make_montage_info(montage)  # a wrong montage fails before any work
    n_trials = check_int(n_trials, "n_trials", 1)
    n_sources = tuple(check_int(n, "n_sources", 1) for n in n_sources)
    t0 = time.perf_counter()
    scenario = dataclasses.replace(
        SCENARIOS["demo"],
        montages=(str(montage),),
        n_sources=n_sources,
        n_trials=n_trials,
        snrs=(float(snr_db),),
    )
    method_objects = make_methods(methods, model=model)
    records, examples = run_evaluation(scenario, method_objects, seed=seed)
    extra = dict(scenario=dataclasses.asdict(scenario))
    sep_lines = []
    if real_data:
        sep, sep_lines = run_sep(method_objects)
        extra["sep"] = sep
    extra["wall_time_s"] = time.perf_counter() - t0
    fname = write_benchmark_report(
        records,
        out_dir,
        examples=examples if figures else None,
        command=command,
        extra=extra,
    )
    text = fname.read_text().replace("# Benchmark v2 results", "# Demo results", 1)
    atomic_write_text(fname, text + "\n".join(sep_lines) + "\n")
    outputs = {"results": fname, "json": out_dir / "results.json"}
    outputs |= {p.stem: p for p in sorted(out_dir.glob("*.png"))}
    return outputs


def _sep_forward(evoked):
    """The template forward of the SEP's fitted cap, cached (256 channels: minutes)."""
    n_ch = len(evoked.ch_names)
    name = "spharapy-sep" + ("" if n_ch == 256 else f"-{n_ch}ch") + "-fwd.fif"
    fname = get_data_path() / "evaluation-forwards" / name
    fname.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        fwd = make_fsaverage_forward(evoked.info, verbose=False)
        mne.write_forward_solution(tmp, fwd, overwrite=True, verbose=False)

    cached_file(fname, write)
    return mne.read_forward_solution(fname, verbose=False)


def run_sep(methods, *, components=("N20", "P25"), min_height=None):
    """Every method on the real median-nerve SEP, scored at its components.

    Parameters
    ----------
    methods : dict of str -> callable
        ``method(evoked, forward, noise_cov) -> mne.SourceEstimate``.
    components : tuple of str
        Components scored (their GFP peak latencies).
    min_height : float | None
        Leave out the electrodes below this height (m; see
        :func:`~mne_brainforge.evaluation.real_data.load_spharapy_sep`).

    Returns
    -------
    results : dict
        The montage fit and, per method and component, the score of
        :func:`~mne_brainforge.evaluation.real_data.score_sep`.
    lines : list of str
        The report's markdown section.
    """
    from .real_data import load_spharapy_sep, score_sep

    evoked, noise_cov, meta = load_spharapy_sep(min_height=min_height, verbose=False)
    evoked = evoked.copy().crop(0.005, 0.045)  # after the stimulus artefact
    fwd = _sep_forward(evoked)
    hemi = meta["hemi_expected"]
    n_ch = len(evoked.ch_names)
    results = dict(
        fit_rms_mm=meta["fit"]["rms_mm"], latencies=meta["latencies"], n_channels=n_ch
    )
    lines = [
        f"## Real data: median-nerve SEP (spharapy, {n_ch} channels)",
        "",
        f"Right median nerve: expected generator in the left S1 hand region "
        f"(a 25 mm ball around (-42, -24, 54) mm; no atlas ships offline). Cap "
        f"fitted to the template scalp at {meta['fit']['rms_mm']:.1f} mm rms. "
        "Cells: peak in the expected region (yes/no), distance of the peak to it "
        "(mm), share of the energy inside it.",
        "",
        "| method | " + " | ".join(components) + " | s/call |",
        "|---" * (len(components) + 2) + "|",
    ]
    for name, method in methods.items():
        logger.info(f"SEP: {name}")
        t0 = time.perf_counter()
        stc = method(evoked, fwd, noise_cov)
        elapsed = time.perf_counter() - t0
        scores = {
            c: score_sep(stc, latency=meta["latencies"][c], hemi_expected=hemi)
            for c in components
        }
        results[name] = dict(scores, time_s=elapsed)
        cells = [
            f"{'yes' if s['in_region'] else 'no'} / {s['distance_mm']:.0f} / "
            f"{100 * s['energy_region']:.0f}%"
            for s in scores.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {elapsed:.2f} |")
    return results, [*lines, ""]
