"""Benchmark test data, generated independently of the training simulator.

A benchmark whose test data come from the simulator that made the training
data (same source model, same region patches, same noise code) measures how
well a network has learned its own simulator, not how well it images the
brain: an *inverse crime*. This module therefore shares no code with
:mod:`mne_brainforge.simulation` or :mod:`mne_brainforge.training` and never
uses the network's parcellation (a test in ``tests/test_testdata.py`` checks
the import graph). It only uses the template head (forward models, source
space, mesh graph) and NumPy/SciPy/MNE.

Source model
    Sources are centred on vertices drawn uniformly from the sources of a
    *placement* (never region seeds):

    - ``'any'``: every source of the source space;
    - ``'medial'``: the medial wall, sources within 20 mm of the midline
      (``|x| < 20 mm`` in fsaverage surface coordinates) whose normal points
      towards it (``nn_x * side < -0.5``, ``side`` = -1 on the left, +1 on the
      right hemisphere);
    - ``'ventral'``: the basal surface, sources below the origin
      (``z < 0``) whose normal points down (``nn_z < -0.5``).

    Shapes (``shape``): ``'dipole'`` (one source), ``'disc'`` (sources within
    a geodesic radius ``extent_mm`` of the centre, along the cortical mesh,
    :func:`scipy.sparse.csgraph.dijkstra` on :func:`~mne_brainforge.head.source_graph`)
    and ``'elongated'`` (an ellipse on the cortex of the same area as the disc,
    ``aspect`` times longer than wide, along a random direction tangent to the
    cortex at the centre: the geodesic distance ``g`` of a source whose
    Euclidean offset from the centre makes an angle with cosine ``c`` to that
    direction is rescaled to ``g * sqrt(c**2 / aspect + (1 - c**2) * aspect)``).
    Profiles (``profile``): ``'flat'`` (every source 1) or ``'gaussian'``
    (``exp(-d**2 / (2 (r/2)**2))``, cut at ``d = r``: 0.14 at the edge).
    ``extent_mm`` is the radius (the equivalent radius for ``'elongated'``).

Waveforms (:data:`WAVEFORMS`, peak 1, times ``tmin .. tmin + duration``)
    ``'erp'`` (sum of 2-3 Gaussians, latency 50-500 ms, width 10-60 ms,
    random signs), ``'alpha'`` and ``'beta'`` (bursts: Gabor functions, 8-12 Hz
    or 15-30 Hz, Gaussian envelope of 80-200 ms or 40-100 ms s.d., random
    phase), ``'spike-wave'`` (a 2.5-4 Hz train of a sharp 8-15 ms spike and a
    slow wave 2.5-4 times wider, of opposite sign, 80-120 ms later) and
    ``'1/f'`` (Gaussian with a 1/f power spectrum). ``correlation`` makes the
    sources' time courses correlate by exactly that value (the waveforms are
    decorrelated, then mixed by the Cholesky factor of the wanted correlation
    matrix, so their shapes become mixtures of the family's).

Noise (:data:`NOISE`), drawn on a longer segment than the data
    ``'white'`` and ``'pink'`` (1/f) independent per channel, optionally with
    channel-dependent levels (log-normal, ``channel_level_sd``), and
    ``'brain'``: spatially coloured, 1/f time courses of 200 random cortical
    sources through the true gain. A dict mixes kinds with given power
    fractions. The noise is scaled to the SNR by mne-brainforge's definition,
    ``SNR_dB = 10 log10(||P L J||_F^2 / ||P N||_F^2)`` over the data window,
    ``P`` the average-reference projector; the noise covariance of the test
    case is estimated from the rest of the segment (noise only, same scale).

Truth heads (:data:`TRUTH_HEADS`)
    The data are made with a head model that the methods never get: a skull
    conductivity other than the inverse's, a thinner or thicker skull,
    displaced electrodes or a co-registration shift; see :class:`HeadModel`
    and :func:`make_truth_forward`.
"""

import dataclasses
import functools
import itertools
from collections.abc import Mapping

import mne
import numpy as np
from mne.utils import logger, verbose
from scipy.sparse.csgraph import dijkstra
from tqdm.auto import tqdm

from ..head import (
    DEEP_SPACING,
    cortex_normal,
    fixed_orientation_gain,
    jitter_electrodes,
    make_deep_source_space,
    make_fsaverage_forward,
    read_fsaverage_source_space,
    source_graph,
)
from ..head.template import DEFAULT_CONDUCTIVITY, DEFAULT_SKULL_THICKNESS
from ..metrics import GroundTruth
from ..utils import check_int, check_number, check_option, check_type, fill_doc

#: Waveform families of :func:`make_waveforms`.
WAVEFORMS = ("erp", "alpha", "beta", "spike-wave", "1/f")
#: Noise kinds of :func:`make_test_case`.
NOISE = ("white", "pink", "brain")
#: Source shapes and profiles.
SHAPES = ("dipole", "disc", "elongated")
PROFILES = ("gaussian", "flat")
#: Source placements (see the module docstring).
PLACEMENTS = ("any", "medial", "ventral")

_N_BRAIN_NOISE_SOURCES = 200
_COV_SEGMENTS = 10  # noise-only segments (each as long as the data) for the covariance
_NOSNR_DB = 20.0  # level of the covariance's noise when no noise is added
_BRAIN = 0.33  # S/m, brain and scalp of the conductivity variants


@dataclasses.dataclass(frozen=True)
class HeadModel:
    """A head the test data are generated with (the methods get the nominal one).

    Parameters
    ----------
    conductivity : tuple of float
        Brain, skull and scalp conductivities (S/m).
    skull_thickness : float
        Largest skull thickness (m) of the template's derived outer skull.
    jitter : float
        Root mean square 3D displacement (m) of each electrode, drawn
        independently per electrode (N(0, jitter / sqrt(3)) per axis; MNE then
        projects the electrodes onto the scalp).
    shift : float
        Length (m) of one translation of all electrodes together, in a random
        direction (a co-registration error).

    Examples
    --------
    >>> from mne_brainforge.evaluation.testdata import TRUTH_HEADS, HeadModel
    >>> TRUTH_HEADS["skull-1/40"].conductivity
    (0.33, 0.0083, 0.33)
    >>> head = HeadModel(jitter=0.006)
    """

    conductivity: tuple = DEFAULT_CONDUCTIVITY
    skull_thickness: float = DEFAULT_SKULL_THICKNESS
    jitter: float = 0.0
    shift: float = 0.0


#: Named truth heads. Skull conductivities of 1/80, 1/40 and 1/20 of the brain's
#: (0.33 S/m), a skull 2 mm thinner or thicker than the nominal 7 mm, electrodes
#: jittered by 2, 4 or 8 mm RMS, a 5 mm co-registration shift, and the benchmark's
#: combined mismatch (4 mm jitter and a 1/40 skull).
TRUTH_HEADS = {
    "nominal": HeadModel(),
    "skull-1/80": HeadModel(conductivity=(_BRAIN, 0.0041, _BRAIN)),
    "skull-1/40": HeadModel(conductivity=(_BRAIN, 0.0083, _BRAIN)),
    "skull-1/20": HeadModel(conductivity=(_BRAIN, 0.0165, _BRAIN)),
    "skull-5mm": HeadModel(skull_thickness=5e-3),
    "skull-9mm": HeadModel(skull_thickness=9e-3),
    "jitter-2mm": HeadModel(jitter=2e-3),
    "jitter-4mm": HeadModel(jitter=4e-3),
    "jitter-8mm": HeadModel(jitter=8e-3),
    "coreg-5mm": HeadModel(shift=5e-3),
    "jitter-4mm+skull-1/40": HeadModel(
        conductivity=(_BRAIN, 0.0083, _BRAIN), jitter=4e-3
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class TestCase:
    """One benchmark test case: data, noise covariance and ground truth.

    Attributes
    ----------
    evoked : mne.EvokedArray
        The data (V) on the channels of the nominal Info, average-referenced,
        with an average-reference projector, ``nave=1``.
    noise_cov : mne.Covariance
        Covariance of independent noise-only data of the same noise model and
        scale.
    truth : mne_brainforge.metrics.GroundTruth
        The true sources (A·m) on the truth forward's source space.
    n_sources : int
        Number of simultaneous sources.
    snr_db : float | None
        SNR (dB) of the data (None: noise-free).
    extents_mm : tuple of float
        Equivalent radius ``sqrt(area / pi)`` (mm) of each source's active set
        (0 for a dipole).
    separation_mm : float
        Smallest Euclidean distance (mm) between two source centres (NaN for one
        source).
    head : str
        Name of the truth head the data were made with.
    params : dict
        The generator's parameters (shape, profile, waveform, noise, placement,
        correlation, seed, ...).
    """

    __test__ = False  # not a pytest class

    evoked: mne.EvokedArray
    noise_cov: mne.Covariance
    truth: GroundTruth
    n_sources: int
    snr_db: float | None
    extents_mm: tuple
    separation_mm: float
    head: str
    params: dict


@fill_doc
@verbose
def make_truth_forward(info, head="nominal", *, deep=False, seed=0, verbose=None):
    """Forward model of a truth head, for the data only.

    Parameters
    ----------
    info : mne.Info
        The nominal Info (montage in fsaverage head coordinates).
    head : str | HeadModel
        A name of :data:`TRUTH_HEADS` or a head model.
    deep : bool
        Add deep sources on a grid of their own: the template's deep
        structures with the grid shifted by half its spacing along x, y and
        z (:func:`~mne_brainforge.head.make_deep_source_space`), so that no
        true deep source sits on a source of the estimates' grid (4.3 mm from
        the nearest ones).
    %(seed)s
        Draws the electrode jitter and the shift direction.
    %(verbose)s

    Returns
    -------
    fwd : mne.Forward
        Free-orientation forward of the truth head, channels named as in
        ``info`` (mixed with ``deep=True``). A non-default conductivity or skull thickness computes a BEM
        solution on first use (about a minute; cached).

    Examples
    --------
    >>> from mne_brainforge.evaluation.testdata import make_truth_forward
    >>> fwd_true = make_truth_forward(info, "jitter-4mm", seed=1)
    """
    check_type(head, (str, HeadModel), "head")
    if isinstance(head, str):
        check_option("head", head, tuple(TRUTH_HEADS))
        head = TRUTH_HEADS[head]
    rng = np.random.default_rng(seed)
    info_true = info
    if head.jitter:
        info_true = jitter_electrodes(info_true, head.jitter / np.sqrt(3), rng)
    if head.shift:
        direction = rng.standard_normal(3)
        info_true = info_true.copy()
        with info_true._unlock():
            for pick in mne.pick_types(info_true, meg=False, eeg=True, exclude=()):
                info_true["chs"][pick]["loc"][:3] += (
                    head.shift * direction / np.linalg.norm(direction)
                )
    check_type(deep, bool, "deep")
    return make_fsaverage_forward(
        info_true,
        conductivity=head.conductivity,
        skull_thickness=head.skull_thickness,
        deep=make_deep_source_space(offset=DEEP_SPACING / 2) if deep else False,
        verbose=verbose,
    )


# --------------------------------------------------------------------------------------
# Waveforms


def _pink(shape, rng):
    """Unit-variance Gaussian noise with a 1/f power spectrum along the last axis."""
    n = shape[-1]
    freqs = np.fft.rfftfreq(n)
    amplitude = np.zeros_like(freqs)
    amplitude[1:] = freqs[1:] ** -0.5
    spectrum = amplitude * (
        rng.standard_normal(shape[:-1] + freqs.shape)
        + 1j * rng.standard_normal(shape[:-1] + freqs.shape)
    )
    out = np.fft.irfft(spectrum, n=n, axis=-1)
    return out / out.std(axis=-1, keepdims=True)


def _gabor(times, rng, band, sd_range):
    centre = rng.uniform(
        times[0] + 0.25 * np.ptp(times), times[-1] - 0.25 * np.ptp(times)
    )
    sd = rng.uniform(*sd_range)
    freq = rng.uniform(*band)
    return np.exp(-((times - centre) ** 2) / (2 * sd**2)) * np.cos(
        2 * np.pi * freq * (times - centre) + rng.uniform(0, 2 * np.pi)
    )


def _erp(times, rng):
    wave = np.zeros_like(times)
    for _ in range(rng.integers(2, 4)):
        latency, width = rng.uniform(0.05, 0.5), rng.uniform(0.01, 0.06)
        wave += (
            rng.choice((-1, 1))
            * rng.uniform(0.3, 1.0)
            * np.exp(-((times - latency) ** 2) / (2 * width**2))
        )
    return wave


def _spike_wave(times, rng):
    period = 1 / rng.uniform(2.5, 4.0)
    spike_sd = rng.uniform(0.008, 0.015)
    wave_sd = spike_sd * rng.uniform(2.5, 4.0)
    delay = rng.uniform(0.08, 0.12)
    onsets = np.arange(times[0] - period + rng.uniform(0, period), times[-1], period)
    onsets = onsets + rng.normal(0, 0.01, len(onsets))  # slightly irregular train
    wave = np.zeros_like(times)
    for onset in onsets:
        wave -= np.exp(-((times - onset) ** 2) / (2 * spike_sd**2))
        wave += 0.6 * np.exp(-((times - onset - delay) ** 2) / (2 * wave_sd**2))
    return wave


@fill_doc
def make_waveforms(family, n_sources, times, *, correlation=None, seed=None):
    """Draw source waveforms of one family (each with peak absolute value 1).

    Parameters
    ----------
    family : str
        One of :data:`WAVEFORMS` (see the module docstring).
    n_sources : int
        Number of waveforms.
    times : ndarray, shape (n_times,)
        Times (s); ERP latencies and burst centres are relative to 0.
    correlation : float | None
        If given, the waveforms are made to have exactly this Pearson
        correlation with each other (decorrelated, then mixed); None keeps the
        independently drawn waveforms as they are.
    %(seed)s

    Returns
    -------
    waveforms : ndarray, shape (n_sources, n_times)
        The waveforms.

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.evaluation.testdata import make_waveforms
    >>> times = np.arange(-0.2, 0.8, 1 / 250)
    >>> make_waveforms("alpha", 2, times, seed=0).shape
    (2, 250)
    """
    check_option("family", family, WAVEFORMS)
    n_sources = check_int(n_sources, "n_sources", minimum=1)
    rng = np.random.default_rng(seed)
    times = np.asarray(times, float)
    if family == "1/f":
        waves = _pink((n_sources, len(times)), rng)
    else:
        draw = {
            "erp": lambda: _erp(times, rng),
            "alpha": lambda: _gabor(times, rng, (8.0, 12.0), (0.08, 0.2)),
            "beta": lambda: _gabor(times, rng, (15.0, 30.0), (0.04, 0.1)),
            "spike-wave": lambda: _spike_wave(times, rng),
        }[family]
        waves = np.array([draw() for _ in range(n_sources)])
    if correlation is not None and n_sources > 1:
        correlation = check_number(correlation, "correlation", minimum=0)
        if correlation > 1:
            raise ValueError(f"correlation must be within 0-1, got {correlation}.")
        if correlation == 1:
            waves = np.repeat(waves[:1], n_sources, axis=0)
        else:
            # orthonormal zero-mean rows, mixed by the Cholesky factor of the target
            centred = waves - waves.mean(axis=1, keepdims=True)
            q, _ = np.linalg.qr(centred.T)
            target = np.full((n_sources, n_sources), correlation)
            np.fill_diagonal(target, 1.0)
            waves = (q @ np.linalg.cholesky(target).T).T
    return waves / np.abs(waves).max(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# Sources


def _vertex_areas(src):
    """Area (m^2) of each source: a third of its triangles' (source-space mesh)."""
    areas = []
    for s in src:
        tris = s["use_tris"] if s["nuse"] < s["np"] else s["tris"]
        rr = s["rr"]
        tri_area = 0.5 * np.linalg.norm(
            np.cross(rr[tris[:, 1]] - rr[tris[:, 0]], rr[tris[:, 2]] - rr[tris[:, 0]]),
            axis=1,
        )
        area = np.bincount(tris.ravel(), np.repeat(tri_area / 3, 3), minlength=s["np"])
        areas.append(area[s["vertno"]])
    return np.concatenate(areas)


def placement_mask(placement, src=None):
    """Which sources a placement allows (see the module docstring).

    Parameters
    ----------
    placement : str
        One of :data:`PLACEMENTS`.
    src : mne.SourceSpaces | None
        The template's source space in fsaverage surface coordinates (None
        reads it).

    Returns
    -------
    mask : ndarray of bool, shape (n_sources,)
        The allowed sources, in forward order.

    Examples
    --------
    >>> from mne_brainforge.evaluation.testdata import placement_mask
    >>> int(placement_mask("medial").sum()) > 1000
    True
    """
    check_option("placement", placement, PLACEMENTS)
    if src is None:
        return _template_mask(placement).copy()
    pos = np.concatenate([s["rr"][s["vertno"]] for s in src])
    nn = np.concatenate([s["nn"][s["vertno"]] for s in src])
    if placement == "any":
        return np.ones(len(pos), bool)
    if placement == "medial":
        side = np.concatenate(
            [np.full(s["nuse"], -1.0 if k == 0 else 1.0) for k, s in enumerate(src)]
        )
        return (np.abs(pos[:, 0]) < 0.02) & (nn[:, 0] * side < -0.5)
    return (pos[:, 2] < 0) & (nn[:, 2] < -0.5)


@functools.lru_cache(maxsize=len(PLACEMENTS))
def _template_mask(placement):
    return placement_mask(placement, read_fsaverage_source_space(verbose=False))


def _draw_centres(pos, allowed, n_sources, separation, rng):
    """Centres one by one: >= min from every earlier one, <= max from the nearest."""
    low, high = separation
    centres = []
    for k in range(n_sources):
        ok = allowed.copy()
        if centres:
            dist = np.linalg.norm(pos[:, None] - pos[centres][None], axis=-1)
            nearest = dist.min(axis=1)
            ok &= (nearest >= low) & (nearest <= high)
        candidates = np.flatnonzero(ok)
        if not len(candidates):
            raise RuntimeError(
                f"No source for centre {k + 1} of {n_sources} is {low * 1e3:g}-"
                f"{high * 1e3:g} mm from the others in this placement; ask for fewer "
                "sources or a wider separation range."
            )
        centres.append(int(rng.choice(candidates)))
    return np.array(centres)


def _patch(centre, shape, profile, radius, aspect, graph, pos, nn, rng):
    """Rows and weights of one source around ``centre``."""
    if shape == "dipole" or radius == 0:
        return np.array([centre]), np.array([1.0])
    reach = radius * np.sqrt(aspect) if shape == "elongated" else radius
    dist = dijkstra(graph, indices=centre, limit=reach * (1 + 1e-9))
    rows = np.flatnonzero(np.isfinite(dist))
    dist = dist[rows]
    if shape == "elongated":
        normal = nn[centre]
        direction = rng.standard_normal(3)
        direction -= normal * (direction @ normal)  # tangent to the cortex
        direction /= np.linalg.norm(direction)
        offset = pos[rows] - pos[centre]
        offset -= np.outer(offset @ normal, normal)  # angles in the tangent plane
        length = np.linalg.norm(offset, axis=1)
        cos2 = np.divide(
            (offset @ direction) ** 2,
            length**2,
            out=np.ones_like(length),
            where=length > 0,
        )
        dist = dist * np.sqrt(cos2 / aspect + (1 - cos2) * aspect)
        keep = dist <= radius
        rows, dist = rows[keep], dist[keep]
    if profile == "flat":
        weights = np.ones(len(rows))
    else:
        weights = np.exp(-(dist**2) / (2 * (radius / 2) ** 2))
    return rows, weights


def _extent(value, rng, name):
    """A fixed value or a uniform draw from a (low, high) range, in m."""
    if np.ndim(value) == 0:
        value = check_number(value, name, minimum=0)
        return value * 1e-3
    low, high = (check_number(v, name, minimum=0) for v in value)
    if low > high:
        raise ValueError(f"{name} must be a number or (low, high), got {value!r}.")
    return rng.uniform(low, high) * 1e-3


# --------------------------------------------------------------------------------------
# Noise


def _noise(kind, gain, n_times, rng, channel_level_sd):
    """Unit-Frobenius-power noise matrix of one kind or a power mix of kinds."""
    kinds = {kind: 1.0} if isinstance(kind, str) else dict(kind)
    for name in kinds:
        check_option("noise", name, NOISE)
    total = sum(kinds.values())
    n_channels = gain.shape[0]
    levels = np.exp(rng.normal(0, channel_level_sd, (n_channels, 1)))
    out = np.zeros((n_channels, n_times))
    for name, fraction in kinds.items():
        if name == "white":
            part = levels * rng.standard_normal((n_channels, n_times))
        elif name == "pink":
            part = levels * _pink((n_channels, n_times), rng)
        else:
            sources = rng.choice(gain.shape[1], _N_BRAIN_NOISE_SOURCES, replace=False)
            part = gain[:, sources] @ _pink((_N_BRAIN_NOISE_SOURCES, n_times), rng)
        out += np.sqrt(fraction / total) * part / np.linalg.norm(part)
    return out


def _average_reference(data):
    return data - data.mean(axis=0, keepdims=True)


def _power(data):
    return float(np.sum(_average_reference(data) ** 2))


def _info_rows(info, gain, ch_names):
    """The EEG channel names of ``info`` and the rows of ``gain`` for them."""
    eeg = [
        info.ch_names[p] for p in mne.pick_types(info, meg=False, eeg=True, exclude=())
    ]
    missing = sorted(set(eeg) - set(ch_names))
    if missing:
        raise ValueError(
            f"fwd_true lacks {len(missing)} EEG channels of info ({missing[:5]}); make "
            "it from the same montage (make_truth_forward(info, ...))."
        )
    return eeg, gain[[ch_names.index(name) for name in eeg]]


def _noisy_evoked(info, eeg, signal, gain, noise, snr_db, channel_level_sd, tmin, rng):
    """The test case's evoked (signal + noise at the SNR) and its noise covariance.

    The noise is drawn for the data window and for noise-only segments after
    it, from which the covariance is estimated; ``gain`` (cortex) carries the
    brain noise.
    """
    n_times = signal.shape[1]
    noise_data = _noise(
        noise, gain, n_times * (1 + _COV_SEGMENTS), rng, channel_level_sd
    )
    scale = np.sqrt(
        _power(signal)
        / (
            _power(noise_data[:, :n_times])
            * 10 ** ((_NOSNR_DB if snr_db is None else snr_db) / 10)
        )
    )
    noise_data *= scale
    data = signal if snr_db is None else signal + noise_data[:, :n_times]
    rest = noise_data[:, n_times:]
    rest = rest - rest.mean(axis=1, keepdims=True)

    info_eeg = mne.pick_info(info, mne.pick_channels(info.ch_names, eeg, ordered=True))
    with info_eeg._unlock():
        info_eeg["projs"] = []
        info_eeg["bads"] = []
    evoked = mne.EvokedArray(
        _average_reference(data), info_eeg, tmin=tmin, nave=1, comment="test case"
    )
    evoked.set_eeg_reference("average", projection=True, verbose=False)
    evoked.apply_proj(verbose=False)
    noise_cov = mne.Covariance(
        rest @ rest.T / rest.shape[1],
        eeg,
        [],
        evoked.info["projs"],
        rest.shape[1] - 1,
        verbose=False,
    )
    return evoked, noise_cov


# --------------------------------------------------------------------------------------
# Test cases


@fill_doc
def make_test_case(
    info,
    fwd_true,
    *,
    n_sources=1,
    snr_db=10.0,
    extent_mm=10.0,
    shape="disc",
    profile="gaussian",
    aspect=3.0,
    waveform="erp",
    correlation=None,
    noise="white",
    channel_level_sd=0.0,
    placement="any",
    separation_mm=(20.0, np.inf),
    amplitude=10e-9,
    tmin=-0.2,
    duration=1.0,
    head="nominal",
    graph=None,
    seed=None,
):
    """Generate one test case (see the module docstring for the models).

    Parameters
    ----------
    info : mne.Info
        The nominal Info: the evoked gets its channels and sampling rate.
    fwd_true : mne.Forward
        The truth head's forward (e.g. :func:`make_truth_forward`), on the
        template's source space, with the EEG channels of ``info``.
    n_sources : int
        Number of simultaneous sources (1-5 are typical).
    snr_db : float | None
        SNR in dB (module docstring); None adds no noise.
    extent_mm : float | tuple of float
        Radius (mm) of each source, or a (low, high) range drawn per source.
        Ignored for dipoles.
    shape : str
        One of :data:`SHAPES`.
    profile : str
        One of :data:`PROFILES`.
    aspect : float
        Length-to-width ratio of an elongated source.
    waveform : str
        One of :data:`WAVEFORMS`.
    correlation : float | None
        Pairwise correlation of the sources' time courses (None: independent
        draws).
    noise : str | dict
        One of :data:`NOISE`, or a dict kind -> fraction of the noise power.
    channel_level_sd : float
        Standard deviation of the log of the per-channel level of the white and
        pink noise (0: equal levels).
    placement : str
        One of :data:`PLACEMENTS`, for every centre.
    separation_mm : tuple of float
        (min, max): each centre is at least min mm (Euclidean) from every
        earlier one and at most max mm from the nearest earlier one; e.g.
        ``(15, 30)`` makes close pairs.
    amplitude : float
        Peak moment (A·m) of each source's centre.
    tmin, duration : float
        First time and length (s) of the data.
    head : str
        Name of the truth head, recorded in the test case.
    graph : scipy.sparse matrix | None
        :func:`~mne_brainforge.head.source_graph` of ``fwd_true['src']``, to
        save computing it for every case.
    %(seed)s

    Returns
    -------
    case : TestCase
        The data, noise covariance, ground truth and metadata.

    See Also
    --------
    iter_test_cases, make_truth_forward

    Examples
    --------
    >>> from mne_brainforge.evaluation.testdata import make_test_case, make_truth_forward
    >>> fwd_true = make_truth_forward(info, "jitter-4mm", seed=0)
    >>> case = make_test_case(info, fwd_true, n_sources=2, snr_db=10, seed=3)
    >>> stc = method(case.evoked, fwd_nominal, case.noise_cov)
    """
    check_type(info, mne.Info, "info")
    check_type(fwd_true, mne.Forward, "fwd_true")
    n_sources = check_int(n_sources, "n_sources", minimum=1)
    check_option("shape", shape, SHAPES)
    check_option("profile", profile, PROFILES)
    check_option("waveform", waveform, WAVEFORMS)
    check_option("placement", placement, PLACEMENTS)
    aspect = check_number(aspect, "aspect", minimum=1)
    channel_level_sd = check_number(channel_level_sd, "channel_level_sd", minimum=0)
    duration = check_number(duration, "duration", minimum=0, strict=True)
    separation = tuple(float(v) * 1e-3 for v in separation_mm)
    if len(separation) != 2 or separation[0] > separation[1]:
        raise ValueError(
            f"separation_mm must be (min, max) with min <= max, got {separation_mm!r}."
        )
    rng = np.random.default_rng(seed)
    fwd = cortex_normal(fwd_true)
    gain, ch_names = fixed_orientation_gain(fwd)
    eeg, gain = _info_rows(info, gain, ch_names)
    src = fwd["src"]
    if graph is None:
        graph = source_graph(src, verbose=False)
    pos = np.concatenate([s["rr"][s["vertno"]] for s in src])
    nn = np.concatenate([s["nn"][s["vertno"]] for s in src])

    # sources
    allowed = placement_mask(placement)
    if len(allowed) != len(pos):
        raise ValueError(
            f"fwd_true has {len(pos)} sources, the template {len(allowed)}: make it "
            "on the template's full source space (make_truth_forward, mindist=0)."
        )
    centres = _draw_centres(pos, allowed, n_sources, separation, rng)
    radii = [
        0.0 if shape == "dipole" else _extent(extent_mm, rng, "extent_mm")
        for _ in centres
    ]
    patches = [
        _patch(c, shape, profile, r, aspect, graph, pos, nn, rng)
        for c, r in zip(centres, radii)
    ]
    sfreq = info["sfreq"]
    times = tmin + np.arange(int(round(duration * sfreq))) / sfreq
    waves = make_waveforms(
        waveform, n_sources, times, correlation=correlation, seed=rng
    )
    moments = np.zeros((gain.shape[1], len(times)))
    for (rows, weights), wave in zip(patches, waves):
        moments[rows] += amplitude * np.outer(weights, wave)
    vertices = [s["vertno"].copy() for s in src]
    truth = GroundTruth(
        mne.SourceEstimate(moments, vertices, tmin=tmin, tstep=1 / sfreq),
        [rows for rows, _ in patches],
        centres,
    )
    active = np.flatnonzero(moments.any(axis=1))
    signal = gain[:, active] @ moments[active]

    evoked, noise_cov = _noisy_evoked(
        info, eeg, signal, gain, noise, snr_db, channel_level_sd, tmin, rng
    )
    areas = _vertex_areas(src)
    centre_dist = np.linalg.norm(pos[centres][:, None] - pos[centres][None], axis=-1)
    params = dict(
        shape=shape,
        profile=profile,
        aspect=aspect,
        waveform=waveform,
        correlation=correlation,
        noise=noise,
        channel_level_sd=channel_level_sd,
        placement=placement,
        separation_mm=tuple(separation_mm),
        extent_mm=extent_mm,
        radii_mm=tuple(r * 1e3 for r in radii),
        amplitude=amplitude,
        seed=seed if isinstance(seed, (int, type(None))) else "generator",
    )
    return TestCase(
        evoked=evoked,
        noise_cov=noise_cov,
        truth=truth,
        n_sources=n_sources,
        snr_db=snr_db,
        extents_mm=tuple(
            0.0
            if shape == "dipole"
            else float(np.sqrt(areas[rows].sum() / np.pi) * 1e3)
            for rows, _ in patches
        ),
        separation_mm=float(
            centre_dist[np.triu_indices(n_sources, 1)].min() * 1e3
            if n_sources > 1
            else np.nan
        ),
        head=head,
        params=params,
    )


@verbose
def iter_test_cases(
    info, fwd_true, grid, *, n_cases=10, seed=0, verbose=None, **kwargs
):
    """Generate test cases over a grid of parameters, ``n_cases`` per grid point.

    Parameters
    ----------
    info : mne.Info
        The nominal Info.
    fwd_true : mne.Forward
        The truth head's forward.
    grid : dict of str -> list
        Parameters of :func:`make_test_case` and the values to cross, e.g.
        ``{"n_sources": [1, 2], "snr_db": [0, 10]}``.
    n_cases : int
        Cases per grid point.
    seed : int
        Base seed: case ``k`` of grid point ``p`` gets its own child seed, so a
        case does not change when other grid points are added after it.
    %(verbose)s
    **kwargs
        Fixed parameters of :func:`make_test_case` (e.g. ``head``).

    Yields
    ------
    point : dict
        The grid point's parameters.
    case : TestCase
        A test case.

    Examples
    --------
    >>> from mne_brainforge.evaluation.testdata import iter_test_cases
    >>> grid = {"n_sources": [1, 2], "snr_db": [10]}
    >>> for point, case in iter_test_cases(info, fwd_true, grid, n_cases=5):
    ...     stc = method(case.evoked, fwd_nominal, case.noise_cov)
    """
    check_type(grid, Mapping, "grid")
    n_cases = check_int(n_cases, "n_cases", minimum=1)
    graph = kwargs.pop("graph", None)
    if graph is None:
        graph = source_graph(cortex_normal(fwd_true)["src"], verbose=False)
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    seeds = np.random.SeedSequence(seed).spawn(len(points))
    logger.info(f"{len(points)} grid points x {n_cases} cases")
    with tqdm(total=len(points) * n_cases, desc="test cases") as bar:
        for point, point_seed in zip(points, seeds):
            for case_seed in point_seed.spawn(n_cases):
                case_seed = int(case_seed.generate_state(1)[0])
                yield (
                    point,
                    make_test_case(
                        info, fwd_true, **kwargs, **point, graph=graph, seed=case_seed
                    ),
                )
                bar.update()
