"""Map-level metrics: transport distance, detection precision, peak error.

Like :mod:`mne_brainforge.metrics.scores`, every metric reads the estimate
through its energy map (:func:`~mne_brainforge.metrics.energy_map`) and
measures distances in millimetres between source positions.
"""

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog
from scipy.spatial.distance import cdist

from ..utils import fill_doc
from .scores import _check, energy_map, local_maxima, source_positions

# total mass of the transport problem: unit masses would put small cells below the
# solver's absolute feasibility tolerance (1e-7)
_SCALE = 1e6


def _binned(mass, pos, cells):
    """Mass per occupied cell and its mass-weighted centroid (m)."""
    keep = mass > 1e-9 * mass.sum()  # negligible, and below the solver's tolerance
    occupied, index = np.unique(cells[keep], axis=0, return_inverse=True)
    index = index.ravel()
    total = np.bincount(index, mass[keep], len(occupied))
    centroid = np.stack(
        [np.bincount(index, mass[keep] * p, len(occupied)) for p in pos[keep].T], 1
    )
    return total / total.sum(), centroid / total[:, None]


@fill_doc
def earth_movers_distance(stc, truth, src, *, resolution=0.01):
    """Earth mover's distance (mm) between the estimated and the true energy maps.

    Both maps are normalised to unit mass (estimate: its energy map; truth:
    the energy map of the true source time courses) and the EMD is the least
    mean distance the estimated mass must travel to become the true one
    (Wasserstein-1 with Euclidean costs). It is 0 for an exact map and, for a
    map displaced as a whole, about the displacement.

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s
    %(src_positions)s
    resolution : float
        Side (m) of the cubes that the maps are binned in (see Notes).

    Returns
    -------
    emd : float
        The earth mover's distance in mm (NaN for an all-zero estimate).

    See Also
    --------
    average_precision, peak_localization_error

    Notes
    -----
    A diffuse estimate has mass on all ~20000 sources, too many for an exact
    transport problem against hundreds of true sources. So each map's mass
    in each cube of side ``resolution`` (a fixed grid) is first moved to its
    mass-weighted centroid, which moves no mass farther than the cube's
    diagonal (17 mm for the default 10 mm cubes) and on average much less
    (on a diffuse map against a 40-source patch, 10 mm and 5 mm cubes agree
    within 0.1 mm, in 1.6 s instead of 35 s); both maps are binned on the same
    grid, so an exact map still scores 0. The transport between the binned
    maps is then solved exactly as a linear programme
    (:func:`scipy.optimize.linprog`, HiGHS); cells with less than 1e-9 of
    the mass are dropped. Distances are Euclidean, through the brain, not
    geodesic along the cortex.

    Examples
    --------
    >>> from mne_brainforge.metrics import earth_movers_distance
    >>> emd = earth_movers_distance(stc, truth, fwd["src"])
    """
    _check(stc, truth)
    estimate, true = energy_map(stc), energy_map(truth.stc)
    if not estimate.any():
        return np.nan
    pos = source_positions(src, truth.stc)
    cells = np.floor(pos / resolution).astype(int)
    est_mass, est_pos = _binned(estimate, pos, cells)
    true_mass, true_pos = _binned(true, pos, cells)
    n_est, n_true = len(est_mass), len(true_mass)
    # flow[i, j] from estimated cell i to true cell j: each true cell receives its
    # mass, no estimated cell gives more than its own (a hair more than the truth in
    # all, so that rounding of the two unit totals cannot make it infeasible)
    result = linprog(
        cdist(est_pos, true_pos).ravel(),
        A_ub=sparse.kron(sparse.eye(n_est), np.ones((1, n_true))),
        b_ub=_SCALE * est_mass * (1 + 1e-6),
        A_eq=sparse.kron(np.ones((1, n_est)), sparse.eye(n_true)),
        b_eq=_SCALE * true_mass,
        bounds=(0, None),
        method="highs",
    )
    if not result.success:
        raise RuntimeError(f"The transport problem failed: {result.message}")
    return float(result.fun / _SCALE * 1e3)


@fill_doc
def average_precision(stc, truth):
    """Average precision of the estimate's energy ranking at finding active sources.

    Positives are the sources of the true patches; the estimate ranks all
    sources by energy. ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct
    energy levels from the highest down, ``P_k`` and ``R_k`` the precision and
    recall of the sources at or above level ``k`` (ties enter together). 1 for
    a ranking with every positive first; about the prevalence of positives
    for a random one.

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s

    Returns
    -------
    ap : float
        Average precision, in [0, 1].

    See Also
    --------
    earth_movers_distance, mne_brainforge.metrics.auc

    Examples
    --------
    >>> from mne_brainforge.metrics import average_precision
    >>> ap = average_precision(stc, truth)
    """
    _check(stc, truth)
    scores = energy_map(stc)
    positive = np.zeros(len(scores), bool)
    positive[np.concatenate(truth.patches)] = True
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    # the last source of each group of equal scores closes a threshold
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    hits = np.cumsum(positive)[last]
    precision = hits / (last + 1)
    recall = hits / positive.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@fill_doc
def peak_localization_error(
    stc, truth, src, graph, *, threshold=0.1, return_peaks=False
):
    """Localization error (mm) of the best-matching peaks of any map.

    The peaks are all local maxima of the energy map above ``threshold``
    times its maximum: sources at least as high as every neighbour, and
    plateaus (connected sources of one value, no higher neighbour) counted
    once at their centre (:func:`~mne_brainforge.metrics.local_maxima`), so
    piecewise-constant maps (region-wise estimates) get finite errors. True
    patch centres and peaks are matched one to one by the Hungarian
    algorithm minimising the total distance; a true source without a peak
    (fewer peaks than sources) counts the distance to the nearest peak.

    Unlike :func:`~mne_brainforge.metrics.localization_error`, which keeps
    only the largest ``n_sources`` maxima, every peak above the threshold may
    be matched: it scores whether the map has a peak at each true source
    regardless of the peaks' order, and ``return_peaks`` gives the number of
    peaks (the spurious ones are ``n_peaks - n_sources``).

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s
    %(src_positions)s
    graph : scipy.sparse matrix
        Source adjacency (:func:`~mne_brainforge.head.source_graph`).
    threshold : float
        Relative level below which peaks are ignored.
    return_peaks : bool
        Also return the number of peaks.

    Returns
    -------
    error : float
        Mean matched distance in mm (NaN for an all-zero estimate).
    n_peaks : int
        Number of peaks above the threshold (only if ``return_peaks``).

    See Also
    --------
    earth_movers_distance, mne_brainforge.metrics.localization_error

    Examples
    --------
    >>> from mne_brainforge.head import source_graph
    >>> from mne_brainforge.metrics import peak_localization_error
    >>> error = peak_localization_error(stc, truth, fwd["src"], source_graph(fwd["src"]))
    """
    _check(stc, truth)
    pos = source_positions(src, truth.stc)
    peaks = local_maxima(energy_map(stc), graph, threshold=threshold, pos=pos)
    if len(peaks) == 0:
        error = np.nan
    else:
        dist = cdist(pos[truth.centres], pos[peaks]) * 1e3
        rows, cols = linear_sum_assignment(dist)
        errors = dist.min(axis=1)  # for true sources left without a peak
        errors[rows] = dist[rows, cols]
        error = float(errors.mean())
    return (error, len(peaks)) if return_peaks else error
