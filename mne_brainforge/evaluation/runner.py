"""One runner: simulate (independently of training) -> estimate -> score.

The benchmark and the demo are configurations of it (:data:`SCENARIOS`). Every
case is drawn by :mod:`mne_brainforge.evaluation.testdata` through a *truth* head
that no method gets; the methods all get the nominal template forward of the
same montage, and the noise covariance of the case. Scores come from
:mod:`mne_brainforge.metrics` and never use a parcellation.

Forward models are the slow part (a minute each on two cores), so each truth head
is computed once for the union of all the scenario's montages (channels renamed
``<montage>/<name>``) and cached on disk; a montage's forward is its rows.
"""

import dataclasses
import json
import time
from pathlib import Path

import mne
import numpy as np
from mne.utils import logger, verbose
from tqdm.auto import tqdm

from .. import metrics
from ..head import (
    cortex_normal,
    make_fsaverage_forward,
    make_montage_info,
    source_graph,
)
from ..utils import (
    atomic_write_text,
    cached_file,
    check_number,
    check_option,
    check_type,
    get_data_path,
)
from .testdata import TRUTH_HEADS, make_test_case, make_truth_forward

#: Metrics of every record: name -> (lower is better, format).
#: ``localization_error`` may match a true source with any peak above 10 % of the
#: map's maximum; ``largest_peaks_error`` only with the map's ``n_sources``
#: largest peaks (the classic LE: for one source, the global maximum), and
#: ``n_peaks`` counts the peaks, so a map with many spurious peaks shows.
METRICS = {
    "localization_error": (True, "{:.1f}"),
    "largest_peaks_error": (True, "{:.1f}"),
    "n_peaks": (True, "{:.0f}"),
    "spatial_dispersion": (True, "{:.1f}"),
    "auc": (False, "{:.2f}"),
    "temporal_correlation": (False, "{:.2f}"),
    "emd": (True, "{:.1f}"),
    "average_precision": (False, "{:.2f}"),
}
#: Short column names of the report's tables.
SHORT = {
    "localization_error": "LE",
    "largest_peaks_error": "LE (largest peaks)",
    "n_peaks": "peaks",
    "spatial_dispersion": "SD",
    "auc": "AUC",
    "temporal_correlation": "corr",
    "emd": "EMD",
    "average_precision": "AP",
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What one evaluation draws: montages, truth heads, SNRs, sources, trials.

    Each (montage, SNR, number of sources) cell gets ``n_trials`` cases; the
    truth heads take turns over the cells and trials, and each case draws its
    source shape, extent, waveform and noise at random from the scenario's
    lists.

    Parameters
    ----------
    name : str
        Name (recorded in the results).
    montages : tuple of str
        Montage names (:func:`~mne_brainforge.head.make_montage_info`).
    heads : tuple of str
        Truth heads (:data:`~mne_brainforge.evaluation.testdata.TRUTH_HEADS`).
    snrs : tuple of float
        SNRs (dB).
    n_sources : tuple of int
        Numbers of simultaneous sources.
    n_trials : int
        Cases per cell.
    shapes, waveforms, noises : tuple of str
        Drawn uniformly per case (see :func:`~.testdata.make_test_case`).
    extent_mm : tuple of float
        Range of the sources' radii (mm), drawn per source.
    separation_mm : tuple of float
        (min, max) distance (mm) of a source centre to the earlier ones.
    sfreq, tmin, duration : float
        Sampling rate (Hz), first time and length (s) of the data.
    """

    name: str
    montages: tuple
    heads: tuple
    snrs: tuple
    n_sources: tuple
    n_trials: int
    shapes: tuple = ("dipole", "disc", "elongated")
    waveforms: tuple = ("erp", "alpha", "beta", "spike-wave")
    noises: tuple = ("white", "pink", "brain")
    extent_mm: tuple = (3.0, 30.0)
    separation_mm: tuple = (15.0, np.inf)
    sfreq: float = 250.0
    tmin: float = -0.1
    duration: float = 0.5

    def cells(self):
        """``(montage, snr, n_sources, trial, head)`` of every case, in run order."""
        # trials outermost: a run stopped early has covered every cell alike
        return [
            (montage, snr, n_src, trial, self.heads[(trial + k) % len(self.heads)])
            for trial in range(self.n_trials)
            for n_src in self.n_sources
            for k, (snr, montage) in enumerate(
                (snr, montage) for snr in self.snrs for montage in self.montages
            )
        ]


#: The configurations: ``default`` is the benchmark (the README's tables),
#: ``demo`` the main job's simulation, ``quick`` the test suite's.
SCENARIOS = {
    "default": Scenario(
        "default",
        montages=("biosemi16", "biosemi32", "biosemi64", "biosemi128"),
        heads=(
            "skull-1/80",
            "skull-1/40",
            "skull-1/20",
            "skull-5mm",
            "skull-9mm",
            "jitter-8mm",
            "coreg-5mm",
            "jitter-4mm+skull-1/40",
        ),
        snrs=(0.0, 5.0, 10.0, 20.0),
        n_sources=(1, 2, 3, 5),
        n_trials=2,
    ),
    "demo": Scenario(
        "demo",
        montages=("biosemi64",),
        heads=("jitter-4mm+skull-1/40",),
        snrs=(10.0,),
        n_sources=(1, 2, 3),
        n_trials=2,
    ),
    "quick": Scenario(
        "quick",
        montages=("biosemi32",),
        heads=("jitter-4mm",),
        snrs=(10.0,),
        n_sources=(1, 2),
        n_trials=1,
        shapes=("disc",),
        extent_mm=(5.0, 10.0),
    ),
}


def _union_info(montages, sfreq):
    """One Info with the channels of every montage, named ``<montage>/<name>``."""
    ch_pos = {}
    for montage in montages:
        positions = make_montage_info(montage, sfreq).get_montage().get_positions()
        ch_pos |= {f"{montage}/{n}": p for n, p in positions["ch_pos"].items()}
    union = mne.channels.make_dig_montage(
        ch_pos,
        nasion=positions["nasion"],
        lpa=positions["lpa"],
        rpa=positions["rpa"],
        coord_frame=positions["coord_frame"],
    )
    info = mne.create_info(list(ch_pos), sfreq, "eeg")
    return info.set_montage(union)


def _montage_rows(fwd, montage):
    """The forward of one montage: its rows of a union forward, names restored."""
    prefix = f"{montage}/"
    names = [n for n in fwd["info"]["ch_names"] if n.startswith(prefix)]
    fwd = mne.pick_channels_forward(fwd, names, ordered=True, verbose=False)
    mapping = {n: n[len(prefix) :] for n in names}
    fwd["info"].rename_channels(mapping)
    fwd["sol"]["row_names"] = [mapping[n] for n in fwd["sol"]["row_names"]]
    return fwd


class ForwardStore:
    """Cached forwards of a scenario: the nominal one and each truth head's.

    Parameters
    ----------
    scenario : Scenario
        Whose montages (one union forward per head, cached on disk).
    seed : int
        Seed of the electrode jitter and shifts of the truth heads.
    """

    def __init__(self, scenario, seed=0):
        self.montages, self.sfreq, self.seed = scenario.montages, scenario.sfreq, seed
        self._union, self._fwd = {}, {}

    def _union_forward(self, head):
        if head not in self._union:
            tag = "+".join(self.montages).replace("/", "_")
            folder = get_data_path() / "evaluation-forwards"
            folder.mkdir(parents=True, exist_ok=True)
            fname = folder / f"{tag}_{head.replace('/', 'over')}_{self.seed}-fwd.fif"
            info = _union_info(self.montages, self.sfreq)

            def write(tmp):
                if head == "nominal-template":
                    fwd = make_fsaverage_forward(info, verbose=False)
                else:
                    fwd = make_truth_forward(info, head, seed=self.seed, verbose=False)
                mne.write_forward_solution(tmp, fwd, overwrite=True, verbose=False)

            logger.info(f"Forward model: {head} ({len(info.ch_names)} channels)")
            cached_file(fname, write)
            self._union[head] = mne.read_forward_solution(fname, verbose=False)
        return self._union[head]

    def forward(self, montage, head="nominal-template"):
        """Free-orientation forward of ``montage`` for a truth head or the nominal one.

        The nominal one (``'nominal-template'``) is what the methods get:
        :func:`~mne_brainforge.make_fsaverage_forward` of the montage.
        """
        key = (montage, head)
        if key not in self._fwd:
            self._fwd[key] = _montage_rows(self._union_forward(head), montage)
        return self._fwd[key]


def score(stc, truth, src, graph):
    """Every metric of :data:`METRICS` for one estimate.

    Parameters
    ----------
    stc : mne.SourceEstimate
        The estimate (any method, any map: strict or plateau maxima).
    truth : mne_brainforge.metrics.GroundTruth
        The simulated sources.
    src : mne.SourceSpaces
        The source space of both.
    graph : scipy.sparse matrix
        Its mesh graph (:func:`~mne_brainforge.head.source_graph`).

    Returns
    -------
    scores : dict
        Metric name -> value (distances in mm).
    """
    error, n_peaks = metrics.peak_localization_error(
        stc, truth, src, graph, return_peaks=True
    )
    return dict(
        localization_error=error,
        largest_peaks_error=metrics.localization_error(stc, truth, src, graph),
        n_peaks=n_peaks,
        spatial_dispersion=metrics.spatial_dispersion(stc, truth, src),
        auc=metrics.auc(stc, truth, src),
        temporal_correlation=metrics.temporal_correlation(stc, truth),
        emd=metrics.earth_movers_distance(stc, truth, src),
        average_precision=metrics.average_precision(stc, truth),
    )


@verbose
def run_evaluation(
    scenario,
    methods,
    *,
    seed=0,
    keep_examples=True,
    checkpoint=None,
    max_time=None,
    verbose=None,
):
    """Simulate every case of a scenario, run every method on it, score it.

    Parameters
    ----------
    scenario : Scenario | str
        A scenario or a name of :data:`SCENARIOS`.
    methods : dict of str -> callable
        ``method(evoked, forward, noise_cov) -> mne.SourceEstimate``, e.g.
        :func:`~mne_brainforge.inverse.classical.make_method` objects and a
        BrainForge method. Each gets the nominal forward of the case's montage.
    seed : int
        Seed of the whole run (same seed, same cases).
    keep_examples : bool
        Keep the first case of each number of sources with every estimate
        (for figures).
    checkpoint : path-like | None
        A JSON file the records are written to after every case; a run with the
        same scenario and seed resumes from it: a method is not run again on a
        case it holds a record of (by the method's name), so a long benchmark
        survives being stopped and a method added later runs alone. Records of
        other methods stay in the file.
    max_time : float | None
        Start no new case after this many seconds (None: run every case); with
        a checkpoint, ``0`` only reads the records it holds. The cases run so
        far are returned either way (cells are ordered trials outermost, so a
        stopped run has covered every cell alike).
    %(verbose)s

    Returns
    -------
    records : list of dict
        One per (case, method): the case's settings, every metric of
        :data:`METRICS` and ``time_s`` (wall time of the call).
    examples : dict
        Number of sources -> ``{"truth": stc, <method>: stc, ...}``.

    Examples
    --------
    >>> from mne_brainforge.evaluation.runner import run_evaluation
    >>> from mne_brainforge.inverse.classical import make_method
    >>> records, examples = run_evaluation("quick", {"sLORETA": make_method("sLORETA")})
    """
    check_type(scenario, (Scenario, str), "scenario")
    if isinstance(scenario, str):
        check_option("scenario", scenario, tuple(SCENARIOS))
        scenario = SCENARIOS[scenario]
    for head in scenario.heads:
        check_option("heads", head, tuple(TRUTH_HEADS))
    if not methods:
        raise ValueError("methods must name at least one method.")
    max_time = check_number(max_time, "max_time", minimum=0, allow_none=True)
    t0 = time.perf_counter()
    store = ForwardStore(scenario, seed)
    graph = src = None
    examples = {}
    key = dict(scenario=dataclasses.asdict(scenario), seed=seed)
    records = _resume(checkpoint, key)
    done = {}  # case -> the methods it has records of
    for record in records:
        done.setdefault(case_key(record), set()).add(record["method"])
    cells = scenario.cells()
    seeds = np.random.SeedSequence(seed).spawn(len(cells))
    for cell, case_seed in zip(
        tqdm(cells, desc=f"{scenario.name} cases", unit="case"), seeds
    ):
        montage, snr, n_src, trial, head = cell
        todo = {n: m for n, m in methods.items() if n not in done.get(cell, ())}
        if not todo:
            continue
        if max_time is not None and time.perf_counter() - t0 >= max_time:
            logger.info(f"max_time {max_time:g} s reached: stopping")
            break
        fwd = store.forward(montage)
        fwd_true = store.forward(montage, head)
        if graph is None:
            src = cortex_normal(fwd_true)["src"]
            graph = source_graph(src, verbose=False)
        rng = np.random.default_rng(case_seed)
        info = make_montage_info(montage, scenario.sfreq)
        case = make_test_case(
            info,
            fwd_true,
            n_sources=n_src,
            snr_db=snr,
            extent_mm=scenario.extent_mm,
            shape=str(rng.choice(scenario.shapes)),
            waveform=str(rng.choice(scenario.waveforms)),
            noise=str(rng.choice(scenario.noises)),
            separation_mm=scenario.separation_mm,
            tmin=scenario.tmin,
            duration=scenario.duration,
            head=head,
            graph=graph,
            seed=int(rng.integers(2**31)),
        )
        base = dict(
            scenario=scenario.name,
            montage=montage,
            n_channels=len(info.ch_names),
            head=head,
            snr_db=snr,
            n_sources=n_src,
            trial=trial,
            shape=case.params["shape"],
            waveform=case.params["waveform"],
            noise=str(case.params["noise"]),
            extents_mm=list(case.extents_mm),
            separation_mm=case.separation_mm,
        )
        keep = keep_examples and n_src not in examples
        if keep:
            examples[n_src] = {"truth": case.truth.stc}
        for name, method in todo.items():
            start = time.perf_counter()
            stc = method(case.evoked, fwd, case.noise_cov)
            elapsed = time.perf_counter() - start
            records.append(
                dict(
                    base,
                    method=name,
                    time_s=elapsed,
                    **score(stc, case.truth, src, graph),
                )
            )
            if keep:
                examples[n_src][name] = stc
        if checkpoint is not None:
            atomic_write_text(
                checkpoint, json.dumps(dict(key, records=records), default=str)
            )
    return [r for r in records if r["method"] in methods], examples


def case_key(record):
    """``(montage, snr, n_sources, trial, head)``: which case a record is of."""
    return (
        record["montage"],
        record["snr_db"],
        record["n_sources"],
        record["trial"],
        record["head"],
    )


def _resume(checkpoint, key):
    """Records of an earlier run with the same scenario and seed (else none)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return []
    blob = json.loads(Path(checkpoint).read_text())
    same = json.loads(json.dumps(key, default=str)) == {k: blob.get(k) for k in key}
    if not same:
        logger.info(f"{checkpoint} is from other settings: starting over")
        return []
    logger.info(f"Resuming from {checkpoint}: {len(blob['records'])} records")
    return blob["records"]


def summarize(records, by, metric="localization_error"):
    """Mean of a metric per group and method.

    Parameters
    ----------
    records : list of dict
        From :func:`run_evaluation`.
    by : callable
        ``by(record) -> hashable`` group key (e.g. ``lambda r: r["snr_db"]``).
    metric : str
        A key of :data:`METRICS` or ``'time_s'``.

    Returns
    -------
    table : dict
        Group -> method -> ``(mean, n)``.
    """
    table = {}
    for record in records:
        cell = table.setdefault(by(record), {}).setdefault(record["method"], [])
        value = record.get(metric)  # records of older runs lack newer metrics
        if value is not None and np.isfinite(value):
            cell.append(value)
    return {
        group: {m: (float(np.mean(v)) if v else np.nan, len(v)) for m, v in row.items()}
        for group, row in table.items()
    }
