"""Deep-source benchmark: subcortical test sources, scored per structure.

Test data
    One truth head the methods never get (by default the benchmark's combined
    mismatch, 4 mm electrode jitter and a 1/40 skull) on a mixed source space
    of its own: the cortex and the template's deep structures on a grid
    shifted by half its spacing (:func:`~.testdata.make_truth_forward` with
    ``deep=True``), so a true deep source is 4.3 mm from the nearest sources
    of the estimates' grid. A deep source is one such point of a structure
    (a random orientation, a waveform of :data:`~.testdata.WAVEFORMS`, a peak
    moment of ``deep_amplitude``); cortical sources are the Gaussian discs of
    :func:`~.testdata.make_test_case`. Noise and SNR as there.

Conditions (:data:`CONDITIONS`)
    ``'deep'``: one deep source alone; ``'deep+cortex'``: a deep source and a
    cortical disc at the same time; ``'cortex'``: cortical discs only, to count
    the deep activity a method invents.

Scores (:func:`score_deep`)
    The map of an estimate is each source's root mean square over time (the
    norm of the three dipoles of a free source). A structure *is detected* when
    its sources on the true side reach at least half of the map's maximum
    (``threshold``); the deep localization error is the distance from the true
    deep source to the deep source with the largest value, whatever its
    structure; the *peak* is in the structure when the map's maximum is one
    of its sources on the true side; a *false deep detection* is a deep source of another structure
    (or, with no deep source at all, any deep source) above the threshold.
"""

import dataclasses
import json
import time

import mne
import numpy as np
from mne.utils import logger, verbose
from tqdm.auto import tqdm

from ..head import DEEP_STRUCTURES, make_fsaverage_forward, source_gain, source_graph
from ..head.montage import make_montage_info
from ..utils import (
    atomic_write_text,
    check_int,
    check_number,
    check_option,
    check_type,
)
from .testdata import (
    _draw_centres,
    _info_rows,
    _noisy_evoked,
    _patch,
    make_truth_forward,
    make_waveforms,
)

#: Conditions of :func:`make_deep_test_case` (see the module docstring).
CONDITIONS = ("deep", "deep+cortex", "cortex")


@dataclasses.dataclass(frozen=True, eq=False)
class DeepTestCase:
    """One test case with deep sources.

    Attributes
    ----------
    evoked : mne.EvokedArray
        The data (V), average-referenced, with the projector.
    noise_cov : mne.Covariance
        Covariance of noise-only data of the same model and scale.
    structure : str | None
        The structure of the deep source (None: cortex only).
    deep_position : ndarray, shape (3,) | None
        Where the deep source is (m, fsaverage MRI coordinates).
    cortex_positions : ndarray, shape (n_cortex, 3)
        The centres of the cortical sources (m).
    snr_db : float
        SNR of the data (dB).
    params : dict
        Condition, waveform, noise, amplitudes, seed.
    """

    __test__ = False

    evoked: mne.EvokedArray
    noise_cov: mne.Covariance
    structure: str | None
    deep_position: np.ndarray | None
    cortex_positions: np.ndarray
    snr_db: float
    params: dict


def _deep_sources(src):
    """(structure, side) of every deep source of a mixed source space."""
    names, sides = [], []
    for name, s in zip(DEEP_STRUCTURES, src[2:]):
        names += [name] * s["nuse"]
        sides.append(np.sign(s["rr"][s["vertno"], 0]))
    return np.array(names), np.concatenate(sides)


def _positions(src):
    return np.concatenate([s["rr"][s["vertno"]] for s in src])


def make_deep_test_case(
    info,
    fwd_true,
    *,
    condition="deep",
    structure="thalamus",
    side=-1,
    snr_db=10.0,
    deep_amplitude=50e-9,
    cortex_amplitude=10e-9,
    n_cortex=1,
    extent_mm=(5.0, 15.0),
    waveform="erp",
    noise="white",
    tmin=-0.1,
    duration=0.5,
    graph=None,
    seed=None,
):
    """Generate one test case with deep sources (see the module docstring).

    Parameters
    ----------
    info : mne.Info
        The nominal Info (channels and sampling rate of the evoked).
    fwd_true : mne.Forward
        The truth head's mixed forward (``make_truth_forward(info, head,
        deep=True)``).
    condition : str
        One of :data:`CONDITIONS`.
    structure : str
        The deep source's structure (:data:`~mne_brainforge.head.DEEP_STRUCTURES`);
        ignored for ``'cortex'``.
    side : int
        -1 (left) or 1 (right hemisphere) of the deep source.
    snr_db : float
        SNR (dB), as in :func:`~.testdata.make_test_case`.
    deep_amplitude : float
        Peak moment (A·m) of the deep source. The default 50 nA·m is that of a
        strong synchronous deep generator (e.g. hippocampal interictal
        activity); a 5 mm grid point stands for 125 mm³ of tissue.
    cortex_amplitude : float
        Peak moment (A·m) of each cortical source's centre (the disc's sources
        taper off as a Gaussian).
    n_cortex : int
        Cortical sources in ``'deep+cortex'`` and ``'cortex'``.
    extent_mm : float | tuple of float
        Radius (mm) of the cortical discs, or a (low, high) range.
    waveform : str
        Waveform family of every source (independent draws).
    noise : str | dict
        Noise kind(s), as in :func:`~.testdata.make_test_case`.
    tmin, duration : float
        First time and length (s) of the data.
    graph : scipy.sparse matrix | None
        :func:`~mne_brainforge.head.source_graph` of the truth cortex.
    seed : None | int | numpy.random.Generator
        Random state.

    Returns
    -------
    case : DeepTestCase
        Data, noise covariance and the truth.
    """
    check_type(info, mne.Info, "info")
    check_type(fwd_true, mne.Forward, "fwd_true")
    check_option("condition", condition, CONDITIONS)
    n_cortex = check_int(n_cortex, "n_cortex", minimum=1)
    deep_amplitude = check_number(deep_amplitude, "deep_amplitude", minimum=0)
    cortex_amplitude = check_number(cortex_amplitude, "cortex_amplitude", minimum=0)
    check_option("structure", structure, DEEP_STRUCTURES)
    check_option("side", side, (-1, 1))
    if fwd_true["src"].kind != "mixed":
        raise ValueError(
            "fwd_true must be a mixed forward with deep sources: use "
            "make_truth_forward(info, head, deep=True)."
        )
    rng = np.random.default_rng(seed)
    gain, ch_names = source_gain(fwd_true)
    eeg, gain = _info_rows(info, gain, ch_names)
    src = fwd_true["src"]
    n_cortex_sources = sum(s["nuse"] for s in src[:2])
    cortex_gain = gain[:, :n_cortex_sources]
    sfreq = info["sfreq"]
    times = tmin + np.arange(int(round(duration * sfreq))) / sfreq
    with_deep = condition != "cortex"
    with_cortex = condition != "deep"
    n_waves = int(with_deep) + (n_cortex if with_cortex else 0)
    waves = list(make_waveforms(waveform, n_waves, times, seed=rng))
    signal = np.zeros((len(eeg), len(times)))

    deep_position = None
    if with_deep:
        names, sides = _deep_sources(src)
        candidates = np.flatnonzero((names == structure) & (sides == side))
        pick = int(rng.choice(candidates))
        orientation = rng.standard_normal(3)
        orientation /= np.linalg.norm(orientation)
        columns = gain[:, n_cortex_sources + 3 * pick : n_cortex_sources + 3 * pick + 3]
        signal += deep_amplitude * np.outer(columns @ orientation, waves.pop())
        deep_position = _positions(src[2:])[pick]

    cortex = src[:2]
    pos = _positions(cortex)
    centres = np.zeros(0, int)
    if with_cortex:
        if graph is None:
            graph = source_graph(cortex, verbose=False)
        nn = np.concatenate([s["nn"][s["vertno"]] for s in cortex])
        allowed = np.ones(len(pos), bool)
        centres = _draw_centres(pos, allowed, n_cortex, (0.02, np.inf), rng)
        for centre, wave in zip(centres, waves):
            low, high = np.broadcast_to(extent_mm, 2)
            radius = rng.uniform(low, high) * 1e-3
            rows, weights = _patch(
                centre, "disc", "gaussian", radius, 1.0, graph, pos, nn, rng
            )
            signal += cortex_gain[:, rows] @ (
                cortex_amplitude * np.outer(weights, wave)
            )
    evoked, noise_cov = _noisy_evoked(
        info, eeg, signal, cortex_gain, noise, snr_db, 0.0, tmin, rng
    )
    return DeepTestCase(
        evoked=evoked,
        noise_cov=noise_cov,
        structure=structure if with_deep else None,
        deep_position=deep_position,
        cortex_positions=pos[centres],
        snr_db=snr_db,
        params=dict(
            condition=condition,
            side=side,
            waveform=waveform,
            noise=str(noise),
            deep_amplitude=deep_amplitude,
            cortex_amplitude=cortex_amplitude,
        ),
    )


def score_deep(stc, src, case, *, threshold=0.5):
    """Detection, localization and false deep detections of one estimate.

    Parameters
    ----------
    stc : mne.MixedSourceEstimate | mne.SourceEstimate
        An estimate on the mixed source space ``src`` (rows in its order).
    src : mne.SourceSpaces
        The estimates' mixed source space (cortex, then the deep structures).
    case : DeepTestCase
        The truth.
    threshold : float
        Fraction of the map's maximum a source must reach to count as found.

    Returns
    -------
    scores : dict
        ``detected`` (bool, the true structure on the true side; None with no
        deep source), ``peak_in_structure`` (bool, the map's maximum is a
        source of the true structure and side: a stricter test that a blurred
        map does not pass by spreading over it), ``deep_error_mm`` (true deep source to the largest deep
        value; None with no deep source), ``false_deep`` (bool), ``deep_share``
        (fraction of the map's energy on deep sources), ``cortex_error_mm``
        (nearest true cortical centre to the cortical maximum; None without
        cortical sources).
    """
    threshold = check_number(threshold, "threshold", minimum=0, maximum=1)
    n_cortex = sum(s["nuse"] for s in src[:2])
    amplitude = np.sqrt(np.mean(np.abs(stc.data) ** 2, axis=1))
    if len(amplitude) != n_cortex + sum(s["nuse"] for s in src[2:]):
        raise ValueError(
            f"The estimate has {len(amplitude)} sources, the mixed source space "
            f"{n_cortex} cortical and {sum(s['nuse'] for s in src[2:])} deep ones."
        )
    peak = amplitude.max()
    deep = amplitude[n_cortex:]
    names, sides = _deep_sources(src)
    deep_pos = _positions(src[2:])
    found = peak > 0 and deep >= threshold * peak
    scores = dict(
        deep_share=float(np.sum(deep**2) / max(np.sum(amplitude**2), 1e-300)),
        detected=None,
        peak_in_structure=None,
        deep_error_mm=None,
        cortex_error_mm=None,
    )
    if case.structure is None:
        scores["false_deep"] = bool(np.any(found))
    else:
        true = (names == case.structure) & (sides == np.sign(case.deep_position[0]))
        scores["detected"] = bool(np.any(found & true))
        scores["peak_in_structure"] = bool(
            np.argmax(amplitude) >= n_cortex and true[np.argmax(deep)]
        )
        scores["false_deep"] = bool(np.any(found & ~true))
        best = deep_pos[int(np.argmax(deep))]
        scores["deep_error_mm"] = float(1e3 * np.linalg.norm(best - case.deep_position))
    if len(case.cortex_positions):
        best = _positions(src[:2])[int(np.argmax(amplitude[:n_cortex]))]
        scores["cortex_error_mm"] = float(
            1e3 * np.min(np.linalg.norm(case.cortex_positions - best, axis=1))
        )
    return scores


def deep_cells(
    montages=("biosemi64",),
    snrs=(0.0, 10.0, 20.0),
    extra_montages=("biosemi32", "biosemi128"),
    extra_snr=10.0,
):
    """The cases of the deep benchmark: ``(condition, montage, snr, structure, side)``.

    On ``montages``, each structure on both sides alone at each of ``snrs``
    and with a cortical source at ``extra_snr``, and ten cortex-only cases per
    SNR (``structure`` and ``side`` then only number them); then each
    structure alone at ``extra_snr`` on ``extra_montages``. Cases are grouped
    by montage (one pair of forward models at a time).
    """
    per_structure = [(s, side) for s in DEEP_STRUCTURES for side in (-1, 1)]
    cells = []
    for montage in montages:
        for condition, cell_snrs in (
            ("deep", snrs),
            ("deep+cortex", (extra_snr,)),
            ("cortex", snrs),
        ):
            cells += [
                (condition, montage, snr, s, side)
                for snr in cell_snrs
                for s, side in per_structure
            ]
    cells += [
        ("deep", montage, extra_snr, s, side)
        for montage in extra_montages
        for s, side in per_structure
    ]
    return cells


@verbose
def run_deep_benchmark(
    methods,
    *,
    cells=None,
    head="jitter-4mm+skull-1/40",
    sfreq=250.0,
    seed=0,
    checkpoint=None,
    skip=None,
    verbose=None,
):
    """Run every method on the deep benchmark's cases and score them per structure.

    Parameters
    ----------
    methods : dict of str -> callable
        ``method(evoked, forward, noise_cov) -> estimate``, each given the
        nominal mixed forward of the case's montage.
    cells : list of tuple | None
        ``(condition, montage, snr, structure, side)`` (default
        :func:`deep_cells`).
    head : str
        The truth head (:data:`~.testdata.TRUTH_HEADS`).
    sfreq : float
        Sampling rate of the data (Hz).
    seed : int
        Seed of the run.
    checkpoint : path-like | None
        JSON file of the records, written after every case; a rerun with the
        same settings resumes from it.
    skip : callable | None
        ``skip(method_name, cell) -> bool``: leave a method out of a case (to
        keep slow methods to some cells).
    %(verbose)s

    Returns
    -------
    records : list of dict
        One per (case, method): the cell, the scores of :func:`score_deep`
        and ``time_s``.
    """
    from .runner import _resume

    cells = deep_cells() if cells is None else list(cells)
    key = dict(deep_cells=[list(c) for c in cells], methods=list(methods), seed=seed)
    key["head"], key["sfreq"] = head, sfreq
    records = _resume(checkpoint, key)
    done = {tuple(r["cell"]) for r in records}
    forwards = {}
    seeds = np.random.SeedSequence(seed).spawn(len(cells))
    for cell, case_seed in zip(tqdm(cells, desc="deep cases", unit="case"), seeds):
        condition, montage, snr, structure, side = cell
        if tuple(json.loads(json.dumps(cell))) in done:
            continue
        info = make_montage_info(montage, sfreq)
        if montage not in forwards:
            logger.info(f"Forward models for {montage}")
            forwards = {
                montage: (
                    make_fsaverage_forward(info, deep=True, verbose=False),
                    make_truth_forward(info, head, deep=True, verbose=False),
                )
            }
        fwd, fwd_true = forwards[montage]
        rng = np.random.default_rng(case_seed)
        case = make_deep_test_case(
            info,
            fwd_true,
            condition=condition,
            structure=structure,
            side=side,
            snr_db=snr,
            waveform=str(rng.choice(("erp", "alpha", "spike-wave"))),
            noise=str(rng.choice(("white", "pink", "brain"))),
            seed=int(rng.integers(2**31)),
        )
        for name, method in methods.items():
            if skip is not None and skip(name, cell):
                continue
            start = time.perf_counter()
            stc = method(case.evoked, fwd, case.noise_cov)
            elapsed = time.perf_counter() - start
            records.append(
                dict(
                    cell=list(cell),
                    condition=condition,
                    montage=montage,
                    n_channels=len(info.ch_names),
                    snr_db=snr,
                    structure=case.structure,
                    method=name,
                    waveform=case.params["waveform"],
                    noise=case.params["noise"],
                    time_s=elapsed,
                    **score_deep(stc, fwd["src"], case),
                )
            )
        if checkpoint is not None:
            atomic_write_text(
                checkpoint, json.dumps(dict(key, records=records), default=str)
            )
    return records


def _cell(rows, metric):
    """``detected % / peak % · median LE`` of some records, a median or a rate."""
    if not rows:
        return "–"
    if metric == "detection":
        rate = 100 * np.mean([r["detected"] for r in rows])
        peak = 100 * np.mean([r["peak_in_structure"] for r in rows])
        error = np.median([r["deep_error_mm"] for r in rows])
        return f"{rate:.0f}% / {peak:.0f}% · {error:.0f}"
    if metric in ("cortex_error_mm", "time_s"):
        return f"{np.median([r[metric] for r in rows]):.1f}"
    return f"{100 * np.mean([r[metric] for r in rows]):.0f}%"


def _table(records, methods, rows, label):
    """Markdown table: one row per ``(name, select(record) -> bool, metric)``."""
    lines = [
        f"| {label} | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 1) + "|",
    ]
    for name, select, metric in rows:
        cells = [
            _cell([r for r in records if r["method"] == m and select(r)], metric)
            for m in methods
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is(**values):
    return lambda r: all(r[k] == v for k, v in values.items())


def deep_report(records):
    """Markdown tables of a deep benchmark run (per structure, SNR, cap, condition).

    Parameters
    ----------
    records : list of dict
        Output of :func:`run_deep_benchmark`.

    Returns
    -------
    markdown : str
        The tables; a deep cell reads ``detection rate / rate of the peak in
        the structure · median deep localization error (mm)``.
    """
    methods = list(dict.fromkeys(r["method"] for r in records))
    main = [r for r in records if r["n_channels"] == 64]
    snrs = sorted({r["snr_db"] for r in main})
    alone = [r for r in main if r["condition"] == "deep"]
    by_structure = [
        (f"{s}, {snr:g} dB", _is(structure=s, snr_db=snr), "detection")
        for s in DEEP_STRUCTURES
        for snr in snrs
    ]
    by_snr = [(f"all, {snr:g} dB", _is(snr_db=snr), "detection") for snr in snrs]
    by_cap = [
        (f"{n}", _is(n_channels=n, condition="deep", snr_db=10.0), "detection")
        for n in sorted({r["n_channels"] for r in records})
    ]
    both = _is(condition="deep+cortex")
    false = [
        (f"{c}, {snr:g} dB", _is(condition=c, snr_db=snr), "false_deep")
        for c in CONDITIONS
        for snr in snrs
    ]
    times = [("all cases", lambda r: True, "time_s")]
    return "\n".join(
        [
            "### Deep source alone, 64 channels",
            "",
            "Each cell: detected (the true structure reaches half of the map's "
            "maximum) / peak in the structure (the map's maximum is in it) · "
            "median distance (mm) from the true source to the largest deep value.",
            "",
            _table(alone, methods, by_structure + by_snr, "structure, SNR"),
            "",
            "### Deep source alone, 10 dB, by channel count",
            "",
            _table(records, methods, by_cap, "channels"),
            "",
            "### Deep source + a cortical disc, 64 channels, 10 dB",
            "",
            _table(
                main,
                methods,
                [
                    ("deep: detected / peak · LE (mm)", both, "detection"),
                    ("cortex: median LE (mm)", both, "cortex_error_mm"),
                ],
                "",
            ),
            "",
            "### False deep detections, 64 channels",
            "",
            "A deep source of another structure (or any deep source when only "
            "the cortex is active) above half of the map's maximum.",
            "",
            _table(main, methods, false, "condition, SNR"),
            "",
            "### Median time per case (s)",
            "",
            _table(records, methods, times, ""),
            "",
        ]
    )
