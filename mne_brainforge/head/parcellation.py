"""Split a cortical source space into contiguous regions of similar size.

The regions are the units of the simulations and of the network's output: a
region's activity is spread over its sources (piecewise constant, see
:meth:`Parcellation.region_matrix`) and source patches are grown region by region
(see :mod:`mne_brainforge.simulation.patches`).

Method (per hemisphere, regions never cross hemispheres):

1. A graph over the sources in use (:func:`source_graph`): the edges of the
   source-space mesh with their Euclidean lengths, so that path lengths are
   geodesic distances along the cortex.
2. Seeds by farthest-point sampling (the first one drawn at random from ``seed``).
3. Graph-geodesic Voronoi cells of the seeds (one multi-source Dijkstra), with a
   few Lloyd iterations (each seed moves to the source of its cell nearest the
   cell's centroid) to make the cells compact.
4. Size balancing: each seed gets an additive distance offset, raised when its
   cell is larger than the target and lowered when smaller (an additively
   weighted, or "power"-like, geodesic Voronoi diagram). The offset only shifts
   cell boundaries; every source still belongs to the cell of the seed its
   shortest weighted path comes from, so **cells stay connected** by
   construction (each source's predecessor on that path is in the same cell).
5. The centre of each region is its geodesic medoid (the source with the least
   summed geodesic distance to the others), so it lies on the cortex inside the
   region.
"""

import operator
import time

import mne
import numpy as np
from mne.io.constants import FIFF
from mne.utils import logger, verbose
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

#: Default number of regions (both hemispheres together). On the ico5 template
#: this is about 41 sources, 2.7 cm^2 (about 1.8 cm across) per region.
DEFAULT_N_REGIONS = 500
#: Default number of assignment iterations (the first half also re-centre seeds).
DEFAULT_N_ITER = 60

_BALANCE = ("sources", "area")
_KNN = 6  # neighbours per source when the source space has no triangles at all
_MIN_EDGE = 1e-9  # m; csgraph would drop zero-length edges
_FORMAT = "mne-brainforge-parcellation"
_FORMAT_VERSION = 1
_HEMI_IDS = {FIFF.FIFFV_MNE_SURF_LEFT_HEMI: "lh", FIFF.FIFFV_MNE_SURF_RIGHT_HEMI: "rh"}


# --------------------------------------------------------------------------------------
# Source graph


def _check_surface_src(src, what):
    if not isinstance(src, mne.SourceSpaces):
        raise TypeError(f"src must be an mne.SourceSpaces, got {type(src).__name__}.")
    kinds = [s["type"] for s in src]
    if len(src) == 0 or any(kind != "surf" for kind in kinds):
        raise ValueError(
            "volume/mixed source spaces are not supported yet; "
            f"{what} needs a cortical surface source space (got source spaces of "
            f"type {kinds}). For a mixed source space pass its surface part, e.g. "
            "mne.SourceSpaces([s for s in src if s['type'] == 'surf'])."
        )
    if len(src) > 2:
        raise ValueError(f"Expected one or two hemispheres, got {len(src)} surfaces.")


def _hemi_names(src):
    names = [_HEMI_IDS.get(s["id"], ("lh", "rh")[i]) for i, s in enumerate(src)]
    if len(set(names)) != len(names):
        names = ["lh", "rh"][: len(src)]
    return names


def _unique_edges(edges, n):
    """Sorted unique undirected edges (rows i < j) from an (m, 2) int array."""
    edges = np.sort(edges, axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    key = np.unique(edges[:, 0].astype(np.int64) * n + edges[:, 1])
    return np.column_stack([key // n, key % n]).astype(np.intp)


def _tri_edges(tris):
    return tris[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)


def _vertex_areas(rr, tris, n):
    """A third of the area of each triangle, given to each of its vertices."""
    if len(tris) == 0:
        return np.zeros(n)
    a, b, c = rr[tris[:, 0]], rr[tris[:, 1]], rr[tris[:, 2]]
    tri_area = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2.0
    return np.bincount(tris.ravel(), np.repeat(tri_area / 3.0, 3), minlength=n)


def _graph_from_edges(edges, rr):
    n = len(rr)
    length = np.linalg.norm(rr[edges[:, 0]] - rr[edges[:, 1]], axis=1)
    length = np.maximum(length, _MIN_EDGE)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    graph = sparse.csr_matrix((np.concatenate([length, length]), (rows, cols)), (n, n))
    graph.sum_duplicates()
    graph.sort_indices()
    return graph


def _get_tris(s, key):
    tris = s.get(key)
    if tris is None or np.size(tris) == 0:
        return None
    tris = np.asarray(tris, dtype=np.intp).reshape(-1, 3)
    if tris.min() < 0 or tris.max() >= s["np"]:
        return None
    return tris


def _connect_components(edges, rr):
    """Add an edge from each small connected component to the largest one."""
    n = len(rr)
    graph = _graph_from_edges(edges, rr)
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp == 1:
        return edges, 0
    main = np.argmax(np.bincount(comp))
    main_idx = np.flatnonzero(comp == main)
    other_idx = np.flatnonzero(comp != main)
    dist, nearest = cKDTree(rr[main_idx]).query(rr[other_idx])
    # per component, its source closest to the main component
    order = np.lexsort((dist, comp[other_idx]))
    first = order[np.r_[True, np.diff(comp[other_idx][order]) != 0]]
    new = np.column_stack([other_idx[first], main_idx[nearest[first]]])
    return _unique_edges(np.concatenate([edges, new]), n), len(new)


def _hemisphere_graph(s):
    """Graph over one hemisphere's sources in use.

    Returns the edge array (m, 2) in source indices (0..nuse-1), the per-source
    areas (m^2) and the name of the method used.
    """
    vertno = np.asarray(s["vertno"], dtype=np.intp)
    n = len(vertno)
    if n == 0:
        raise ValueError("A hemisphere of the source space has no sources in use.")
    rr = s["rr"][vertno]
    remap = np.full(s["np"], -1, dtype=np.intp)
    remap[vertno] = np.arange(n)
    edges = areas = method = None

    # 1. edges of the decimated mesh (use_tris) or the full mesh (tris) between
    #    used sources, if every source in use gets at least one edge
    for key in ("use_tris", "tris"):
        tris = _get_tris(s, key)
        if tris is None:
            continue
        tris = remap[tris]
        cand = _tri_edges(tris)
        cand = _unique_edges(cand[(cand >= 0).all(axis=1)], n)
        if n == 1 or np.all(np.bincount(cand.ravel(), minlength=n) > 0):
            edges, method = cand, key
            areas = _vertex_areas(rr, tris[(tris >= 0).all(axis=1)], n)
            break

    # 2. decimated source space without usable use_tris: each used source owns
    #    the surface vertices geodesically nearest to it (Voronoi cells on the
    #    full mesh); sources whose cells touch are neighbours
    tris = _get_tris(s, "tris")
    if edges is None and tris is not None:
        full_edges = _unique_edges(_tri_edges(tris), s["np"])
        full = _graph_from_edges(full_edges, s["rr"])
        _, _, owner = dijkstra(
            full,
            directed=False,
            indices=vertno,
            min_only=True,
            return_predecessors=True,
        )
        valid = owner >= 0
        owner = np.where(valid, remap[np.where(valid, owner, 0)], -1)
        cand = owner[full_edges]
        cand = cand[(cand >= 0).all(axis=1)]
        edges, method = _unique_edges(cand, n), "voronoi"
        full_area = _vertex_areas(s["rr"], tris, s["np"])
        areas = np.bincount(owner[valid], full_area[valid], minlength=n)

    # 3. no triangles at all: k nearest neighbours
    if edges is None:
        k = min(_KNN, n - 1)
        if k > 0:
            dist, idx = cKDTree(rr).query(rr, k + 1)
            cand = np.column_stack([np.repeat(np.arange(n), k), idx[:, 1:].ravel()])
            edges = _unique_edges(cand, n)
            spacing = np.median(dist[:, 1])
        else:
            edges, spacing = np.zeros((0, 2), np.intp), 0.0
        method = "knn"
        areas = np.full(n, np.sqrt(3) / 2 * spacing**2)  # hexagonal cell

    edges, n_added = _connect_components(edges, rr)
    if n_added:
        method += f"+{n_added} bridging edges"
    return edges, areas, method


def _source_graph(src):
    """Block-diagonal graph, areas and per-hemisphere methods."""
    blocks, areas, methods = [], [], []
    for s in src:
        edges, area, method = _hemisphere_graph(s)
        blocks.append(_graph_from_edges(edges, s["rr"][s["vertno"]]))
        areas.append(area)
        methods.append(method)
    graph = sparse.block_diag(blocks, format="csr")
    graph.sort_indices()
    return graph, np.concatenate(areas), methods


@verbose
def source_graph(src, *, verbose=None):
    """Return the graph of neighbouring sources of a surface source space.

    Nodes are the sources in use in forward order (left hemisphere's
    ``s['vertno']``, then the right's); edge weights are Euclidean edge lengths
    in metres, so shortest-path lengths (e.g.
    :func:`scipy.sparse.csgraph.dijkstra`) are geodesic distances along the
    cortex. There are no edges between hemispheres.

    Edges come from the source-space mesh: the decimated triangulation
    ``s['use_tris']`` if it gives every source in use a neighbour, else the full
    surface ``s['tris']`` restricted to the sources in use if that does; else
    (e.g. a decimated source space without ``use_tris``) two sources are
    neighbours when their geodesic Voronoi cells on the full surface touch.
    Isolated pieces left over (e.g. sources dropped by ``mindist`` in a forward
    model) are joined to the rest by their shortest Euclidean bridge.

    Parameters
    ----------
    src : mne.SourceSpaces
        A surface source space, in any coordinate frame (e.g. ``fwd['src']`` in
        head coordinates).
    %(verbose)s

    Returns
    -------
    graph : scipy.sparse.csr_matrix, shape (n_sources, n_sources)
        Symmetric sparse matrix of edge lengths (m), one connected component
        per hemisphere.

    See Also
    --------
    parcellate_source_space

    Examples
    --------
    Geodesic distances (m) from the first source to all others:

    >>> from scipy.sparse.csgraph import dijkstra
    >>> from mne_brainforge.simulation import source_graph
    >>> graph = source_graph(fwd["src"])
    >>> graph.shape  # fsaverage ico5
    (20484, 20484)
    >>> distances = dijkstra(graph, indices=0)
    """
    _check_surface_src(src, "source_graph")
    graph, _, methods = _source_graph(src)
    logger.info(
        f"Source graph: {graph.shape[0]} sources, {graph.nnz // 2} edges ({methods})"
    )
    return graph


# --------------------------------------------------------------------------------------
# Parcellation of one hemisphere


def _farthest_point_seeds(graph, n_seeds, rng):
    n = graph.shape[0]
    seeds = [int(rng.integers(n))]
    dist = dijkstra(graph, directed=False, indices=seeds[0])
    for _ in range(n_seeds - 1):
        nxt = int(np.argmax(dist))
        seeds.append(nxt)
        new = dijkstra(graph, directed=False, indices=nxt, limit=dist[nxt])
        dist = np.minimum(dist, new)
    return np.array(seeds, dtype=np.intp)


def _weighted_voronoi(coo, n, seeds, offsets, eps):
    """Label of each source: the seed minimising offset + geodesic distance.

    Virtual node ``n + i`` links to seed ``i`` with weight ``offsets[i] + eps``;
    a multi-source Dijkstra from the virtual nodes gives each source the virtual
    node of its nearest (weighted) seed.
    """
    k = len(seeds)
    rows = np.concatenate([coo.row, n + np.arange(k)])
    cols = np.concatenate([coo.col, seeds])
    data = np.concatenate([coo.data, offsets + eps])
    aug = sparse.csr_matrix((data, (rows, cols)), (n + k, n + k))
    _, _, sources = dijkstra(
        aug,
        directed=True,
        indices=n + np.arange(k),
        min_only=True,
        return_predecessors=True,
    )
    return sources[:n] - n


def _recentre(labels, rr, mass, old_seeds):
    """Move each seed to the source of its cell nearest the cell's centroid."""
    k = len(old_seeds)
    total = np.bincount(labels, mass, minlength=k)
    centroid = np.zeros((k, 3))
    np.add.at(centroid, labels, rr * mass[:, None])
    nonempty = total > 0
    centroid[nonempty] /= total[nonempty, None]
    dist = np.linalg.norm(rr - centroid[labels], axis=1)
    order = np.lexsort((dist, labels))
    first = order[np.r_[True, np.diff(labels[order]) != 0]]
    seeds = old_seeds.copy()
    seeds[labels[first]] = first
    return seeds


def _parcellate_hemisphere(graph, rr, mass, n_regions, rng, n_iter):
    n = graph.shape[0]
    if n_regions == n:
        return np.arange(n)
    if n_regions == 1:
        return np.zeros(n, dtype=np.intp)
    seeds = _farthest_point_seeds(graph, n_regions, rng)
    coo = graph.tocoo()
    spacing = np.median(coo.data)
    eps = 1e-3 * spacing
    target = mass.sum() / n_regions
    offsets = np.zeros(n_regions)
    n_recentre = n_iter // 2
    best, best_score = None, np.inf
    for it in range(n_iter):
        labels = _weighted_voronoi(coo, n, seeds, offsets, eps)
        load = np.bincount(labels, mass, minlength=n_regions)
        if it >= n_recentre or it == n_iter - 1:
            score = load.max() / load.min() if load.min() > 0 else np.inf
            if score < best_score:
                best, best_score = labels, score
        if it < n_recentre:
            seeds = _recentre(labels, rr, mass, seeds)
        # damped update: one spacing of offset per 100% of size excess
        offsets = offsets + spacing * (load / target - 1.0)
        offsets -= offsets.min()
    if best is None:  # pathological: keep the plain Voronoi cells (never empty)
        best = _weighted_voronoi(coo, n, seeds, np.zeros(n_regions), eps)
    return best


def _split_regions(n_regions, counts):
    """Split n_regions over hemispheres in proportion to counts (largest remainder)."""
    counts = np.asarray(counts, float)
    quota = n_regions * counts / counts.sum()
    split = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - split), kind="stable")[: n_regions - split.sum()]:
        split[i] += 1
    # each hemisphere gets at least one region and at most one per source
    while np.any(split < 1):
        split[np.argmax(split)] -= 1
        split[np.argmin(split)] += 1
    while np.any(split > counts):
        over = np.argmax(split - counts)
        split[over] -= 1
        split[np.argmax(counts - split)] += 1
    return split


def _medoids(graph, labels, n_regions):
    """Geodesic medoid of each region, computed within the region."""
    coo = graph.tocoo()
    keep = labels[coo.row] == labels[coo.col]
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    intra = sparse.csr_matrix(
        (coo.data[keep], (rank[coo.row[keep]], rank[coo.col[keep]])), graph.shape
    )
    bounds = np.searchsorted(labels[order], np.arange(n_regions + 1))
    medoid = np.empty(n_regions, dtype=np.intp)
    for r in range(n_regions):
        a, b = bounds[r], bounds[r + 1]
        dist = dijkstra(intra[a:b, a:b], directed=False)
        medoid[r] = order[a + np.argmin(dist.sum(axis=1))]
    return medoid


# --------------------------------------------------------------------------------------
# Public API


class Parcellation:
    """Contiguous cortical regions of a surface source space.

    Build one with :func:`parcellate_source_space` (or :meth:`from_dict` /
    :meth:`load`). Sources are numbered in forward order: the left
    hemisphere's sources in use (``vertices[0]``), then the right's.

    Parameters
    ----------
    labels : array-like of int, shape (n_sources,)
        Region of each source, 0..n_regions-1, regions numbered hemisphere by
        hemisphere.
    vertices : list of array of int
        The vertex numbers of the sources in use (``[s['vertno'] for s in
        src]``).
    pos : array, shape (n_sources, 3)
        Source positions (m).
    graph : sparse matrix, shape (n_sources, n_sources)
        Source graph of edge lengths (m), see :func:`source_graph`.
    source_areas : array, shape (n_sources,)
        Cortical area represented by each source (m^2).
    normals : array, shape (n_sources, 3) | None
        Source normals (used to draw patch directions in the tangent plane).
    subject : str | None
        The subject (needed by :meth:`to_labels` for label extraction).
    hemi_names : list of str | None
        ``'lh'``/``'rh'`` for each entry of ``vertices`` (default ``['lh',
        'rh']``).
    centre_index : array of int, shape (n_regions,) | None
        Source index of the centre of each region; None computes the geodesic
        medoids.
    coord_frame : int
        Coordinate frame of ``pos`` (an ``mne.io.constants.FIFF`` constant).
    info : dict | None
        JSON-able provenance (seed, method, ...).

    Attributes
    ----------
    labels : ndarray of int, shape (n_sources,)
        Region of each source.
    n_regions : int
        Number of regions.
    n_sources : int
        Number of sources.
    hemis : ndarray of int, shape (n_regions,)
        Hemisphere of each region, an index into ``vertices`` and
        ``hemi_names`` (0 = left, 1 = right for an ordinary source space).
    centre_index : ndarray of int, shape (n_regions,)
        Source index (forward order) of each region's centre, its geodesic
        medoid.
    centre_vertex : ndarray of int, shape (n_regions,)
        Surface vertex number of each region's centre (in its hemisphere).
    centres : ndarray, shape (n_regions, 3)
        Position of each region's centre (m): a source, so on the cortex.
    sizes : ndarray of int, shape (n_regions,)
        Number of sources in each region.
    areas : ndarray, shape (n_regions,)
        Cortical area of each region (m^2).
    adjacency : scipy.sparse.csr_matrix, shape (n_regions, n_regions)
        1 where two regions are neighbours (share a source-graph edge).
    region_sources : list of ndarray of int
        The sources of each region (sorted).
    neighbours : list of ndarray of int
        The neighbouring regions of each region.
    vertices, pos, normals, graph, source_areas, subject, hemi_names, coord_frame, info
        As given (see Parameters); ``graph`` is a ``csr_matrix``.

    See Also
    --------
    parcellate_source_space, grow_patch, random_patches

    Notes
    -----
    The regions of a BrainForge model are ``model.parcellation``; see the
    tutorial :ref:`sphx_glr_auto_tutorials_00_quickstart.py` for their time
    courses.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.simulation import parcellate_source_space
    >>> src = bf.datasets.read_fsaverage_source_space()
    >>> parcellation = parcellate_source_space(src, 500)
    >>> parcellation.n_regions, parcellation.n_sources
    (500, 20484)
    >>> labels = parcellation.to_labels()  # one mne.Label per region
    """

    def __init__(
        self,
        labels,
        vertices,
        pos,
        graph,
        source_areas,
        *,
        normals=None,
        subject=None,
        hemi_names=None,
        centre_index=None,
        coord_frame=FIFF.FIFFV_COORD_MRI,
        info=None,
    ):
        self.vertices = [np.asarray(v, dtype=np.int64) for v in vertices]
        self.hemi_names = list(hemi_names or ["lh", "rh"][: len(self.vertices)])
        n_per_hemi = [len(v) for v in self.vertices]
        n = int(sum(n_per_hemi))
        self.labels = np.asarray(labels, dtype=np.intp)
        self.pos = np.asarray(pos, dtype=float)
        self.source_areas = np.asarray(source_areas, dtype=float)
        self.graph = sparse.csr_matrix(graph)
        self.normals = None if normals is None else np.asarray(normals, dtype=float)
        if (
            self.labels.shape != (n,)
            or self.pos.shape != (n, 3)
            or self.source_areas.shape != (n,)
            or self.graph.shape != (n, n)
            or (self.normals is not None and self.normals.shape != (n, 3))
            or len(self.hemi_names) != len(self.vertices)
        ):
            raise ValueError("Inconsistent parcellation arrays (number of sources).")
        self.n_sources = n
        self.n_regions = int(self.labels.max()) + 1 if n else 0
        self.sizes = np.bincount(self.labels, minlength=self.n_regions)
        if self.labels.min() < 0 or np.any(self.sizes == 0):
            raise ValueError("Region labels must be 0..n_regions-1, none empty.")
        self.subject = subject
        self.coord_frame = int(coord_frame)
        self.info = dict(info or {})

        source_hemi = np.repeat(np.arange(len(n_per_hemi)), n_per_hemi)
        self.hemis = np.zeros(self.n_regions, dtype=np.intp)
        self.hemis[self.labels] = source_hemi
        if np.any(self.hemis[self.labels] != source_hemi):
            raise ValueError("A region spans both hemispheres.")
        self._source_hemi = source_hemi
        self._hemi_offset = np.concatenate([[0], np.cumsum(n_per_hemi)])

        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.n_regions + 1))
        self.region_sources = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        self.areas = np.bincount(
            self.labels, self.source_areas, minlength=self.n_regions
        )

        coo = self.graph.tocoo()
        r1, r2 = self.labels[coo.row], self.labels[coo.col]
        cross = r1 != r2
        adj = sparse.csr_matrix(
            (np.ones(cross.sum()), (r1[cross], r2[cross])), (self.n_regions,) * 2
        )
        adj.data[:] = 1.0  # duplicates were summed
        self.adjacency = adj
        self.neighbours = [
            adj.indices[adj.indptr[r] : adj.indptr[r + 1]]
            for r in range(self.n_regions)
        ]

        if centre_index is None:
            centre_index = _medoids(self.graph, self.labels, self.n_regions)
        self.centre_index = np.asarray(centre_index, dtype=np.intp)
        if self.centre_index.shape != (self.n_regions,) or np.any(
            self.labels[self.centre_index] != np.arange(self.n_regions)
        ):
            raise ValueError("Each region's centre must be one of its sources.")
        self.centres = self.pos[self.centre_index]
        hemi_of_centre = self._source_hemi[self.centre_index]
        local = self.centre_index - self._hemi_offset[hemi_of_centre]
        self.centre_vertex = np.array(
            [self.vertices[h][i] for h, i in zip(hemi_of_centre, local)], dtype=np.int64
        )
        self._centre_dist = None

    def __repr__(self):
        sizes = f"{self.sizes.min()}-{self.sizes.max()}" if self.n_regions else "-"
        return (
            f"<Parcellation | {self.n_regions} regions, {self.n_sources} sources "
            f"({sizes} per region), subject {self.subject!r}>"
        )

    @property
    def centre_distances(self):
        """Euclidean distances between region centres (m), (n_regions, n_regions).

        Examples
        --------
        >>> import numpy as np
        >>> distances = parcellation.centre_distances  # m
        >>> near = np.flatnonzero(distances[0] < 0.03)  # within 3 cm of region 0
        """
        if self._centre_dist is None:
            diff = self.centres[:, None, :] - self.centres[None, :, :]
            self._centre_dist = np.linalg.norm(diff, axis=-1)
        return self._centre_dist

    def region_matrix(self, normalize=False):
        """Sparse matrix mapping region values to source values.

        Parameters
        ----------
        normalize : bool
            If False (default), entries are 1: ``R @ x_regions`` spreads each
            region's value over its sources (piecewise constant). If True, each
            column sums to 1: ``R.T @ x_sources`` averages sources per region.

        Returns
        -------
        R : scipy.sparse.csr_matrix, shape (n_sources, n_regions)
            The mapping.

        Examples
        --------
        Region averages of source values and back:

        >>> import numpy as np
        >>> x_sources = np.random.default_rng(0).standard_normal(parcellation.n_sources)
        >>> x_regions = parcellation.region_matrix(normalize=True).T @ x_sources
        >>> x_smooth = parcellation.region_matrix() @ x_regions  # piecewise constant
        >>> x_regions.shape, x_smooth.shape
        ((500,), (20484,))
        """
        data = np.ones(self.n_sources)
        if normalize:
            data /= self.sizes[self.labels]
        return sparse.csr_matrix(
            (data, (np.arange(self.n_sources), self.labels)),
            (self.n_sources, self.n_regions),
        )

    def to_labels(self):
        """Return one :class:`mne.Label` per region.

        Labels are named ``bf-<hemi>-<region>`` (e.g. ``'bf-lh-012'``, the
        region index zero-padded), carry the region's vertices and positions and
        the parcellation's subject, and work with
        :func:`mne.extract_label_time_course` for estimates on these vertices.
        Positions are in the source space's coordinate frame
        (:attr:`coord_frame`; head coordinates for ``fwd['src']``).

        Returns
        -------
        labels : list of mne.Label
            The labels, in region order.

        Notes
        -----
        See the tutorials :ref:`sphx_glr_auto_tutorials_00_quickstart.py` and
        :ref:`sphx_glr_auto_tutorials_03_continuous_data.py`.

        Examples
        --------
        The time courses of the regions of the pretrained model in an estimate:

        >>> import mne
        >>> import mne_brainforge as bf
        >>> labels = bf.load_pretrained().parcellation.to_labels()
        >>> labels[0].name
        'bf-lh-000'
        >>> tcs = mne.extract_label_time_course(stc, labels, fwd["src"], mode="mean")
        """
        width = max(3, len(str(self.n_regions - 1)))
        out = []
        for r, idx in enumerate(self.region_sources):
            h = self.hemis[r]
            hemi = self.hemi_names[h]
            local = idx - self._hemi_offset[h]
            out.append(
                mne.Label(
                    vertices=self.vertices[h][local],
                    pos=self.pos[idx],
                    hemi=hemi,
                    name=f"bf-{hemi}-{r:0{width}d}",
                    subject=self.subject,
                )
            )
        return out

    def to_dict(self):
        """Return the parcellation as a dict of arrays and JSON-able values.

        Returns
        -------
        state : dict
            NumPy arrays (labels, positions, source graph, ...) and plain
            str/int/list/None values; :meth:`from_dict` rebuilds the
            parcellation from it.

        See Also
        --------
        from_dict, save

        Examples
        --------
        >>> from mne_brainforge.simulation import Parcellation
        >>> state = parcellation.to_dict()
        >>> Parcellation.from_dict(state).n_regions == parcellation.n_regions
        True
        """
        graph = self.graph
        state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "subject": self.subject,
            "hemi_names": list(self.hemi_names),
            "n_regions": int(self.n_regions),
            "coord_frame": self.coord_frame,
            "info": self.info,
            "labels": self.labels.astype(np.int64),
            "centre_index": self.centre_index.astype(np.int64),
            "pos": self.pos,
            "source_areas": self.source_areas,
            "graph_indptr": graph.indptr.astype(np.int64),
            "graph_indices": graph.indices.astype(np.int64),
            "graph_data": graph.data.astype(float),
        }
        if self.normals is not None:
            state["normals"] = self.normals
        for i, v in enumerate(self.vertices):
            state[f"vertices_{i}"] = v
        return state

    @classmethod
    def from_dict(cls, state):
        """Rebuild a parcellation from :meth:`to_dict`'s output.

        Parameters
        ----------
        state : dict
            As returned by :meth:`to_dict` (values may be NumPy arrays or lists).

        Returns
        -------
        parcellation : Parcellation
            The parcellation.

        See Also
        --------
        to_dict, load

        Examples
        --------
        >>> from mne_brainforge.simulation import Parcellation
        >>> copy = Parcellation.from_dict(parcellation.to_dict())
        """
        if state.get("format") != _FORMAT:
            raise ValueError("Not a mne-brainforge parcellation (missing 'format').")
        if int(state["format_version"]) > _FORMAT_VERSION:
            raise ValueError(
                f"Parcellation format version {state['format_version']} is newer than "
                f"this mne-brainforge supports ({_FORMAT_VERSION}); please upgrade."
            )
        hemi_names = list(state["hemi_names"])
        n = len(state["labels"])
        graph = sparse.csr_matrix(
            (
                np.asarray(state["graph_data"], float),
                np.asarray(state["graph_indices"], np.intp),
                np.asarray(state["graph_indptr"], np.intp),
            ),
            shape=(n, n),
        )
        normals = state.get("normals")
        return cls(
            state["labels"],
            [state[f"vertices_{i}"] for i in range(len(hemi_names))],
            state["pos"],
            graph,
            state["source_areas"],
            normals=normals,
            subject=state["subject"],
            hemi_names=hemi_names,
            centre_index=state["centre_index"],
            coord_frame=state["coord_frame"],
            info=state.get("info"),
        )

    def save(self, fname, *, overwrite=False):
        """Save to a ``.npz`` file (no pickles; read back with :meth:`load`).

        Parameters
        ----------
        fname : path-like
            The file name (``.npz`` is appended by NumPy if missing).
        overwrite : bool
            Whether to overwrite an existing file.

        See Also
        --------
        load

        Examples
        --------
        >>> parcellation.save("parcellation.npz", overwrite=True)
        """
        import json
        from pathlib import Path

        fname = Path(fname)
        if fname.suffix != ".npz":
            fname = fname.with_name(fname.name + ".npz")
        if fname.exists() and not overwrite:
            raise FileExistsError(f"{fname} exists; pass overwrite=True to replace it.")
        state = self.to_dict()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        np.savez_compressed(fname, __meta__=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, fname):
        """Read a parcellation written by :meth:`save`.

        Parameters
        ----------
        fname : path-like
            The ``.npz`` file.

        Returns
        -------
        parcellation : Parcellation
            The parcellation.

        See Also
        --------
        save

        Examples
        --------
        >>> from mne_brainforge.simulation import Parcellation
        >>> parcellation = Parcellation.load("parcellation.npz")
        """
        import json

        with np.load(fname, allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files if k != "__meta__"}
            state.update(json.loads(str(npz["__meta__"])))
        return cls.from_dict(state)


@verbose
def parcellate_source_space(
    src,
    n_regions=DEFAULT_N_REGIONS,
    *,
    balance="sources",
    n_iter=DEFAULT_N_ITER,
    seed=0,
    verbose=None,
):
    """Split a surface source space into contiguous regions of similar size.

    Parameters
    ----------
    src : mne.SourceSpaces
        A surface source space (one or two hemispheres), e.g.
        :func:`mne_brainforge.datasets.read_fsaverage_source_space` or
        ``fwd['src']`` (any coordinate frame; only the sources in use,
        ``s['vertno']``, are parcellated). Volume, mixed and discrete source
        spaces are not supported yet.
    n_regions : int
        Number of regions over both hemispheres, split between hemispheres in
        proportion to their numbers of sources. The default, 500, gives about
        41 sources and 2.7 cm^2 (about 1.8 cm across) per region on the ico5
        template: twice as coarse as DeepSIF's 994 regions on fsaverage5, so
        the network has half as many outputs and trains faster, while regions
        stay at about the spatial resolution of scalp EEG (of the order of
        1-2 cm) and the smallest simulated patch (one region) is still a
        compact, cm-scale source.
    balance : ``'sources'`` | ``'area'``
        What "similar size" means: the same number of sources per region
        (default; each source of a forward model is a dipole of the same
        weight, so regions contribute comparably) or the same cortical area.
    n_iter : int
        Number of assignment iterations; the first half also re-centre the
        seeds (Lloyd), all of them balance the sizes. The labelling with the
        smallest max/min size ratio among the balancing-only iterations is
        kept.
    seed : int | None
        Seed of the random first seed of the farthest-point sampling. The
        result is deterministic for a given seed.
    %(verbose)s

    Returns
    -------
    parcellation : Parcellation
        The regions.

    See Also
    --------
    Parcellation, source_graph, grow_patch, random_patches

    Notes
    -----
    See :mod:`mne_brainforge.head.parcellation` for the method. Regions
    are contiguous in the source graph (:func:`source_graph`) by
    construction, and never cross hemispheres.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.simulation import parcellate_source_space
    >>> src = bf.datasets.read_fsaverage_source_space()
    >>> parcellation = parcellate_source_space(src, n_regions=500, seed=0)
    >>> parcellation.n_regions, parcellation.subject
    (500, 'fsaverage')

    Regions of equal cortical area instead of equal numbers of sources:

    >>> parcellation = parcellate_source_space(src, 500, balance="area")
    """
    t0 = time.perf_counter()
    _check_surface_src(src, "parcellate_source_space")
    if balance not in _BALANCE:
        raise ValueError(f"balance must be one of {_BALANCE}, got {balance!r}.")
    n_iter = _check_int(n_iter, "n_iter", 1)
    counts = [len(s["vertno"]) for s in src]
    n_total = int(sum(counts))
    n_regions = _check_int(n_regions, "n_regions", 2)
    if n_regions > n_total:
        raise ValueError(
            f"n_regions ({n_regions}) cannot exceed the number of sources in use "
            f"({n_total})."
        )
    if seed is not None:
        seed = _check_int(seed, "seed", 0)
    split = _split_regions(n_regions, counts)
    graph, areas, methods = _source_graph(src)
    pos = np.concatenate([s["rr"][s["vertno"]] for s in src])
    normals = np.concatenate([s["nn"][s["vertno"]] for s in src])
    mass = np.ones(n_total) if balance == "sources" else areas
    seeds = np.random.SeedSequence(seed).spawn(len(src))
    rngs = [np.random.default_rng(ss) for ss in seeds]

    labels, offset, start = [], 0, 0
    for _s, n_h, k, rng in zip(src, counts, split, rngs):
        sl = slice(start, start + n_h)
        lab = _parcellate_hemisphere(
            graph[sl, sl], pos[sl], mass[sl], int(k), rng, n_iter
        )
        # number regions by their first source, for a stable order
        _, first = np.unique(lab, return_index=True)
        rank = np.empty(k, np.intp)
        rank[np.argsort(first, kind="stable")] = np.arange(k)
        labels.append(rank[lab] + offset)
        offset += k
        start += n_h
    labels = np.concatenate(labels)
    subject = src._subject if hasattr(src, "_subject") else None
    if subject is None:
        subject = src[0].get("subject_his_id")
    info = dict(
        seed=seed,
        balance=balance,
        n_iter=n_iter,
        graph_method=methods,
        n_regions_per_hemi=split.tolist(),
    )
    parc = Parcellation(
        labels,
        [s["vertno"] for s in src],
        pos,
        graph,
        areas,
        normals=normals,
        subject=subject,
        hemi_names=_hemi_names(src),
        coord_frame=src[0]["coord_frame"],
        info=info,
    )
    logger.info(
        f"Parcellated {n_total} sources into {n_regions} regions {split.tolist()} in "
        f"{time.perf_counter() - t0:.2f} s: {parc.sizes.min()}-{parc.sizes.max()} "
        f"sources, {parc.areas.min() * 1e4:.2f}-{parc.areas.max() * 1e4:.2f} cm^2 per "
        f"region (graph: {methods})"
    )
    return parc


def _check_int(value, name, minimum):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return value
