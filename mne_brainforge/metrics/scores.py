"""Accuracy metrics of a source estimate against a known ground truth.

Every metric reads the estimate through its *energy map*: the root mean square
over time of each source's estimated time course, ``e_i = rms_t |J^_i(t)|``
(for free-orientation estimates, of the vector norm). Positions are the source
positions of the source space the estimate lives on; distances are Euclidean,
in millimetres.
"""

import mne
import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from ..utils import fill_doc


class GroundTruth:
    """The true sources of a simulation.

    Parameters
    ----------
    stc : mne.SourceEstimate
        True source time courses (dipole moments, A·m) on the sources of the
        source space (fixed orientation).
    patches : list of array of int
        For each simultaneous source, the indices (rows of ``stc.data``) of the
        sources of its patch.
    centres : array of int, shape (n_patches,)
        The row of each patch's centre source.

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    One patch of the pretrained model's regions with one waveform (``fwd`` on
    the template's source space):

    >>> import mne
    >>> import numpy as np
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.metrics import GroundTruth
    >>> from mne_brainforge.simulation import grow_patch
    >>> parcellation = bf.load_pretrained().parcellation
    >>> patch = grow_patch(parcellation, 42, rng=0)
    >>> data = 10e-9 * np.outer(patch.dense_weights(), np.hanning(100))  # A·m
    >>> vertices = [s["vertno"] for s in fwd["src"]]
    >>> true_stc = mne.SourceEstimate(data, vertices, tmin=0.0, tstep=0.01)
    >>> truth = GroundTruth(true_stc, [patch.sources], [patch.centre_index])
    >>> truth.n_sources
    1
    """

    def __init__(self, stc, patches, centres):
        self.stc = stc
        self.patches = [np.asarray(p, int) for p in patches]
        self.centres = np.asarray(centres, int)
        if len(self.patches) != len(self.centres) or not len(self.patches):
            raise ValueError("Give one centre per patch, and at least one patch.")

    @property
    def n_sources(self):
        """Number of simultaneous sources (patches).

        Examples
        --------
        >>> truth.n_sources == len(truth.patches)
        True
        """
        return len(self.patches)


def source_positions(src, stc):
    """Positions (m, the frame of ``src``) of the rows of ``stc.data``.

    Parameters
    ----------
    src : mne.SourceSpaces
        The source space of the estimate.
    stc : mne.SourceEstimate
        The estimate (its vertices must be sources in use of ``src``).

    Returns
    -------
    pos : ndarray, shape (n_sources, 3)
        Position of the source of each row of ``stc.data``.

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.metrics import source_positions
    >>> pos = source_positions(fwd["src"], stc)  # head coordinates
    >>> peak = pos[np.argmax(np.abs(stc.data).max(axis=1))]
    """
    pos = []
    for s, vertno in zip(src, stc.vertices):
        missing = np.setdiff1d(vertno, s["vertno"])
        if len(missing):
            raise ValueError(
                f"The estimate has {len(missing)} vertices that the source space does "
                "not use: estimate and source space do not match."
            )
        pos.append(s["rr"][vertno])
    return np.concatenate(pos)


def energy_map(stc):
    """RMS over time of each source of ``stc`` (vector norm if free orientation).

    Parameters
    ----------
    stc : mne.SourceEstimate | mne.VectorSourceEstimate
        The estimate.

    Returns
    -------
    energy : ndarray, shape (n_sources,)
        The energy map, in the unit of ``stc.data``.

    Examples
    --------
    >>> from mne_brainforge.metrics import energy_map
    >>> energy = energy_map(stc)
    >>> energy.shape == (stc.data.shape[0],)
    True
    """
    data = stc.data
    if data.ndim == 3:  # VectorSourceEstimate
        data = np.linalg.norm(data, axis=1)
    return np.sqrt(np.mean(np.abs(data) ** 2, axis=-1))


def _check(stc, truth):
    if not isinstance(stc, (mne.SourceEstimate, mne.VectorSourceEstimate)):
        raise TypeError(
            f"stc must be a surface SourceEstimate, got {type(stc).__name__}."
        )
    if stc.data.shape[0] != truth.stc.data.shape[0] or any(
        not np.array_equal(a, b) for a, b in zip(stc.vertices, truth.stc.vertices)
    ):
        raise ValueError(
            "The estimate and the ground truth have different vertices; morph or "
            "restrict the estimate to the truth's source space first."
        )


def local_maxima(values, graph, *, threshold=0.1, pos=None):
    """Sources whose value is >= all their neighbours' and >= threshold * max.

    A plateau (connected sources of one value, as in a map that is constant
    over each region) is one maximum if no source next to it is higher,
    represented by its source closest to the plateau's centroid (its first
    source without ``pos``); a plateau with a higher neighbour anywhere on its
    border is no maximum, even though its inner sources equal all theirs.

    Parameters
    ----------
    values : ndarray, shape (n_sources,)
        Non-negative map.
    graph : scipy.sparse matrix, shape (n_sources, n_sources)
        Source adjacency (e.g. :func:`~mne_brainforge.simulation.source_graph`).
    threshold : float
        Fraction of the global maximum below which maxima are ignored.
    pos : ndarray, shape (n_sources, 3) | None
        Source positions, to place each plateau's maximum at its centre.

    Returns
    -------
    maxima : ndarray of int
        Indices of the local maxima, largest value first.

    Examples
    --------
    >>> from mne_brainforge.metrics import energy_map, local_maxima
    >>> from mne_brainforge.simulation import source_graph
    >>> graph = source_graph(fwd["src"])
    >>> peaks = local_maxima(energy_map(stc), graph, threshold=0.5)
    """
    graph = graph.tocsr()
    n = graph.shape[0]
    neighbour_max = np.full(n, -np.inf)
    rows = np.repeat(np.arange(n), np.diff(graph.indptr))
    np.maximum.at(neighbour_max, rows, values[graph.indices])
    # plateaus: components of the edges that join equal values (single sources too)
    equal = values[rows] == values[graph.indices]
    links = sparse.csr_matrix(
        (np.ones(equal.sum()), (rows[equal], graph.indices[equal])), shape=(n, n)
    )
    _, plateau = connected_components(links, directed=False)
    # a plateau is a maximum if every source of it is >= all its neighbours
    lower = np.bincount(plateau, values < neighbour_max) > 0
    keep = ~lower[plateau] & (values >= threshold * values.max()) & (values > 0)
    kept = np.flatnonzero(keep)  # whole plateaus (threshold and sign are per value)
    kept = kept[np.argsort(plateau[kept], kind="stable")]
    groups = (
        np.split(kept, np.flatnonzero(np.diff(plateau[kept])) + 1) if len(kept) else []
    )
    maxima = np.empty(len(groups), int)
    for k, members in enumerate(groups):
        if pos is None or len(members) == 1:
            maxima[k] = members[0]
        else:
            centre = pos[members].mean(axis=0)
            maxima[k] = members[
                np.argmin(np.linalg.norm(pos[members] - centre, axis=1))
            ]
    return maxima[np.argsort(values[maxima], kind="stable")[::-1]]


def _distinct(maxima, pos, n, min_distance):
    """Greedily keep up to ``n`` maxima at least ``min_distance`` apart."""
    kept = []
    for m in maxima:
        if all(np.linalg.norm(pos[m] - pos[k]) >= min_distance for k in kept):
            kept.append(m)
            if len(kept) == n:
                break
    return np.array(kept, int)


@fill_doc
def localization_error(stc, truth, src, graph, *, threshold=0.1, min_distance=0.01):
    """Mean distance (mm) between true sources and matched estimated maxima.

    The estimated maxima are the local maxima of the energy map (above
    ``threshold`` times its maximum, at most as many as there are true
    sources, largest first, each at least ``min_distance`` from a larger one; a
    plateau counts once, at its centre). True patch centres and estimated maxima are paired
    by the Hungarian algorithm minimising the total distance; a true source
    left without a maximum counts the distance to the nearest maximum. With one
    source this is the classic distance from the true source to the global
    maximum (Molins et al., 2008; Sun et al., PNAS 2022).

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s
    %(src_positions)s
    graph : scipy.sparse matrix
        Source adjacency, for local maxima.
    threshold : float
        Relative level below which local maxima are ignored.
    min_distance : float
        Smallest distance (m) between two estimated maxima.

    Returns
    -------
    error : float
        Localization error in mm (NaN if the estimate has no maximum).

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> from mne_brainforge.metrics import localization_error
    >>> from mne_brainforge.simulation import source_graph
    >>> error = localization_error(stc, truth, fwd["src"], source_graph(fwd["src"]))
    """
    _check(stc, truth)
    pos = source_positions(src, truth.stc)
    maxima = local_maxima(energy_map(stc), graph, threshold=threshold, pos=pos)
    maxima = _distinct(maxima, pos, truth.n_sources, min_distance)
    if len(maxima) == 0:
        return np.nan
    dist = cdist(pos[truth.centres], pos[maxima]) * 1e3
    rows, cols = linear_sum_assignment(dist)
    errors = np.full(truth.n_sources, np.nan)
    errors[rows] = dist[rows, cols]
    unmatched = np.isnan(errors)
    errors[unmatched] = dist[unmatched].min(axis=1)
    return float(errors.mean())


@fill_doc
def spatial_dispersion(stc, truth, src):
    """Spatial dispersion (mm): how far the estimated energy spreads from the truth.

    ``SD = sqrt( sum_i d_i^2 e_i^2 / sum_i e_i^2 )`` with ``e`` the energy map
    and ``d_i`` the distance from source ``i`` to the nearest source of any
    true patch (Molins et al., NeuroImage 2008; Sun et al., PNAS 2022, as SD).
    0 when all estimated energy lies inside the true patches.

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s
    %(src_positions)s

    Returns
    -------
    sd : float
        Spatial dispersion in mm.

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> from mne_brainforge.metrics import spatial_dispersion
    >>> sd = spatial_dispersion(stc, truth, fwd["src"])
    """
    _check(stc, truth)
    pos = source_positions(src, truth.stc)
    active = np.unique(np.concatenate(truth.patches))
    dist = _min_distance(pos, pos[active])
    energy = energy_map(stc) ** 2
    return float(np.sqrt(np.sum(dist**2 * energy) / np.sum(energy)) * 1e3)


def _min_distance(points, targets):
    return cKDTree(targets).query(points)[0]


@fill_doc
def auc(stc, truth, src, *, far=0.02):
    """Area under the ROC curve separating patch sources from far-away sources.

    Positives: the sources of the true patches. Negatives: sources farther than
    ``far`` (m) from every patch source. Score: the energy map. Computed as the
    Mann-Whitney statistic (probability that a random positive outscores a
    random negative, ties counting half). 1 is perfect, 0.5 is chance
    (Grova et al., NeuroImage 2006; Hecker et al., Front. Neurosci. 2021).

    Parameters
    ----------
    %(stc_estimate)s
    %(truth)s
    %(src_positions)s
    far : float
        Smallest distance (m) of a negative source from every patch source.

    Returns
    -------
    auc : float
        The area under the ROC curve, in [0, 1].

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> from mne_brainforge.metrics import auc
    >>> score = auc(stc, truth, fwd["src"], far=0.03)
    """
    from scipy.stats import rankdata

    _check(stc, truth)
    pos = source_positions(src, truth.stc)
    positive = np.unique(np.concatenate(truth.patches))
    negative = np.flatnonzero(_min_distance(pos, pos[positive]) > far)
    scores = energy_map(stc)
    ranks = rankdata(np.concatenate([scores[positive], scores[negative]]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@fill_doc
def nmse(stc, truth):
    """Normalised mean squared error of the source time courses.

    Both the estimate and the truth are divided by their maximum absolute value,
    then ``nMSE = mean((J^ - J)^2)`` over sources and times (Hecker et al.,
    2021). Sign-sensitive: use signed (fixed or ``pick_ori='normal'``)
    estimates.

    Parameters
    ----------
    stc : mne.SourceEstimate
        The estimate, on the truth's vertices and times.
    %(truth)s

    Returns
    -------
    nmse : float
        The normalised mean squared error (0 is perfect).

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> from mne_brainforge.metrics import nmse
    >>> error = nmse(stc, truth)
    """
    _check(stc, truth)
    est, true = stc.data, truth.stc.data
    est = est / (np.abs(est).max() or 1.0)
    true = true / np.abs(true).max()
    return float(np.mean((est - true) ** 2))


@fill_doc
def temporal_correlation(stc, truth):
    """Mean absolute Pearson correlation of each true waveform with the estimate's.

    For each patch, the estimated waveform is the mean estimate over the patch's
    sources and the true one the moment of its centre; the absolute value makes
    it blind to the sign ambiguity of cortex-normal orientations.

    Parameters
    ----------
    stc : mne.SourceEstimate
        The estimate, on the truth's vertices and times.
    %(truth)s

    Returns
    -------
    correlation : float
        Mean absolute correlation over the patches, in [0, 1] (a patch whose
        estimated or true waveform is constant counts 0).

    See Also
    --------
    evaluate

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> from mne_brainforge.metrics import temporal_correlation
    >>> r = temporal_correlation(stc, truth)
    """
    _check(stc, truth)
    corrs = []
    for patch, centre in zip(truth.patches, truth.centres):
        est = stc.data[patch].mean(0)
        true = truth.stc.data[centre]
        if est.std() == 0 or true.std() == 0:
            corrs.append(0.0)
            continue
        corrs.append(abs(np.corrcoef(est, true)[0, 1]))
    return float(np.mean(corrs))


def otsu_threshold(values, n_bins=256):
    """Otsu's threshold: the cut maximising the between-class variance.

    Parameters
    ----------
    values : array-like
        The values to split in two classes.
    n_bins : int
        Number of histogram bins.

    Returns
    -------
    threshold : float
        The threshold (a bin centre): values above it form the upper class.

    See Also
    --------
    region_precision_recall

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.metrics import otsu_threshold
    >>> values = np.r_[np.zeros(90), np.ones(10)]
    >>> 0 < otsu_threshold(values) < 1
    True
    """
    hist, edges = np.histogram(values, bins=n_bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[np.argmax(between)])


@fill_doc
def region_precision_recall(stc, truth, region_labels):
    """Precision and recall of the active regions, Otsu-thresholded (as DeepSIF).

    Region energy: mean energy map over the region's sources. Active regions:
    energy above Otsu's threshold of the region energies, for the estimate and,
    the same way, for the truth (so that a perfect estimate scores 1 and 1,
    and the faint Gaussian tail of a patch does not count as a missed region).

    Parameters
    ----------
    stc : mne.SourceEstimate
        The estimate.
    %(truth)s
    region_labels : ndarray of int, shape (n_sources,)
        Region of each source (e.g. ``Parcellation.labels``).

    Returns
    -------
    precision, recall : float
        The fraction of the estimated active regions that are truly active,
        and of the truly active regions that are estimated active.

    See Also
    --------
    evaluate, otsu_threshold

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    With the regions of the pretrained model:

    >>> import mne_brainforge as bf
    >>> from mne_brainforge.metrics import region_precision_recall
    >>> regions = bf.load_pretrained().parcellation.labels
    >>> precision, recall = region_precision_recall(stc, truth, regions)
    """
    _check(stc, truth)
    region_labels = np.asarray(region_labels)
    n_regions = region_labels.max() + 1
    counts = np.maximum(np.bincount(region_labels, minlength=n_regions), 1)

    def active(estimate):
        energy = np.bincount(region_labels, energy_map(estimate), n_regions) / counts
        return energy > otsu_threshold(energy)

    estimated, true = active(stc), active(truth.stc)
    hits = np.sum(estimated & true)
    precision = hits / estimated.sum() if estimated.any() else 0.0
    return float(precision), float(hits / true.sum())


#: name -> metric, for the benchmark tables (lower is better for the first three)
METRICS = (
    "localization_error",
    "spatial_dispersion",
    "nmse",
    "auc",
    "temporal_correlation",
    "precision",
    "recall",
)


@fill_doc
def evaluate(stc, truth, src, graph, region_labels):
    """All metrics of one estimate, as a dict (see :data:`METRICS`).

    Parameters
    ----------
    stc : mne.SourceEstimate
        The estimate, on the truth's vertices and times.
    %(truth)s
    %(src_positions)s
    graph : scipy.sparse matrix
        Source adjacency (:func:`~mne_brainforge.simulation.source_graph`),
        for :func:`localization_error`.
    region_labels : ndarray of int, shape (n_sources,)
        Region of each source, for :func:`region_precision_recall`.

    Returns
    -------
    scores : dict of str -> float
        The metrics, keyed by the names of ``METRICS``:
        ``localization_error`` and ``spatial_dispersion`` (mm), ``nmse``,
        ``auc``, ``temporal_correlation``, ``precision`` and ``recall``.

    See Also
    --------
    GroundTruth, mne_brainforge.evaluation.benchmark.run_benchmark

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_01_compare_methods.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.evaluation import metrics
    >>> from mne_brainforge.simulation import source_graph
    >>> src = fwd["src"]
    >>> truth = metrics.GroundTruth(true_stc, patch_rows, centre_rows)
    >>> regions = bf.load_pretrained().parcellation.labels
    >>> scores = metrics.evaluate(stc, truth, src, source_graph(src), regions)
    >>> list(scores) == list(metrics.METRICS)
    True
    """
    precision, recall = region_precision_recall(stc, truth, region_labels)
    return dict(
        localization_error=localization_error(stc, truth, src, graph),
        spatial_dispersion=spatial_dispersion(stc, truth, src),
        nmse=nmse(stc, truth),
        auc=auc(stc, truth, src),
        temporal_correlation=temporal_correlation(stc, truth),
        precision=precision,
        recall=recall,
    )
