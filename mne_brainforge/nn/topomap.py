"""EEG channels -> 2D scalp maps, as one precomputed matrix per montage.

Electrode positions are projected with the azimuthal equidistant projection
about the head's vertex (the angle from the vertical through the head centre
becomes the radius, the azimuth is kept), then interpolated onto a regular
``size x size`` grid. Every interpolant used here is linear in the channel
values, so it is a matrix ``W`` (n_pixels x n_channels): a batch of EEG of
that montage becomes maps in one matmul, and a channel left out (bad, missing)
is simply a column that is not there.
"""

import numpy as np
from scipy.interpolate import CloughTocher2DInterpolator, LinearNDInterpolator
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

#: Interpolation methods of :func:`topomap_matrix`.
METHODS = ("bilinear", "bicubic", "rbf", "gaussian")
#: Centre of the projection in fsaverage head coordinates (m): the centre of
#: the sphere MNE fits to the template's scalp.
HEAD_CENTRE = (0.0, 0.0, 0.04)
#: Angular radius (rad) the grid covers: 2.4 rad (138 deg) from the vertex
#: reaches the lowest electrodes of common caps (e.g. BioSemi's Iz at 133 deg).
GRID_RADIUS = 2.4
#: Electrodes closer than this (m) are one site: their values are averaged
#: (the interpolants need distinct sites; a thin-plate system with two equal
#: rows is singular).
COINCIDENT_DISTANCE = 1e-3
#: The network needs at least this many channels (distinct sites).
MIN_CHANNELS = 8


def azimuthal_equidistant(pos, centre=HEAD_CENTRE):
    """Project 3D electrode positions (m) to the plane, in radians.

    Parameters
    ----------
    pos : ndarray, shape (n_channels, 3)
        Electrode positions in head coordinates.
    centre : array-like, shape (3,)
        Centre of the head.

    Returns
    -------
    xy : ndarray, shape (n_channels, 2)
        Projected positions: the distance from the origin is the angle (rad)
        between the electrode and the vertex (+z) seen from ``centre``.

    See Also
    --------
    topomap_matrix

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.nn import azimuthal_equidistant
    >>> pos = [[0.0, 0.0, 0.13], [0.09, 0.0, 0.04]]  # the vertex, then on the equator
    >>> np.round(azimuthal_equidistant(pos), 3)
    array([[0.   , 0.   ],
           [1.571, 0.   ]])
    """
    rel = np.asarray(pos, float) - np.asarray(centre, float)
    norm = np.linalg.norm(rel, axis=1)
    if np.any(norm == 0):
        raise ValueError("An electrode sits at the projection centre.")
    theta = np.arccos(np.clip(rel[:, 2] / norm, -1.0, 1.0))
    phi = np.arctan2(rel[:, 1], rel[:, 0])
    return np.c_[theta * np.cos(phi), theta * np.sin(phi)]


def coincident_groups(pos, distance=COINCIDENT_DISTANCE):
    """Groups of electrodes closer than ``distance`` (m) to each other.

    Parameters
    ----------
    pos : ndarray, shape (n_channels, 3)
        Electrode positions (m).
    distance : float
        Electrodes closer than this are one site (chained: a-b and b-c close
        puts a, b and c in one group).

    Returns
    -------
    groups : list of ndarray of int
        Indices of each group of two or more electrodes (sorted); empty if
        all sites are distinct.

    Examples
    --------
    >>> from mne_brainforge.nn.topomap import coincident_groups
    >>> coincident_groups([[0, 0, 0.1], [0, 0.0005, 0.1], [0.05, 0, 0.08]])
    [array([0, 1])]
    """
    pos = np.asarray(pos, float)
    pairs = cKDTree(pos).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return []
    graph = coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pos),) * 2
    )
    _, labels = connected_components(graph, directed=False)
    counts = np.bincount(labels)
    return [np.flatnonzero(labels == k) for k in np.flatnonzero(counts > 1)]


def grid(size, radius=GRID_RADIUS):
    """Pixel centres (n_pixels, 2) of the ``size x size`` grid and its head mask."""
    axis = (np.arange(size) + 0.5) / size * 2 * radius - radius
    xx, yy = np.meshgrid(axis, axis, indexing="xy")
    pixels = np.c_[xx.ravel(), yy.ravel()]
    return pixels, (np.hypot(xx, yy) <= radius)


def topomap_matrix(
    pos, size=24, method="rbf", *, centre=HEAD_CENTRE, radius=GRID_RADIUS
):
    """Interpolation matrix from channels to a scalp-map grid.

    Parameters
    ----------
    pos : ndarray, shape (n_channels, 3)
        Positions (m, head coordinates) of the channels in use.
    size : int
        The grid is ``size x size`` pixels.
    method : str
        ``'bilinear'`` (piecewise linear on the Delaunay triangulation),
        ``'bicubic'`` (Clough-Tocher piecewise cubic), ``'rbf'`` (thin-plate
        spline) or ``'gaussian'`` (Gaussian radial basis functions). Pixels of
        the head outside the electrodes' convex hull take, for the first two,
        the value of the nearest electrode.
    centre : array-like, shape (3,)
        Centre of the head (m), see :func:`azimuthal_equidistant`.
    radius : float
        Angular radius (rad) the grid covers, from the vertex (default 2.4 rad:
        138 degrees).

    Returns
    -------
    matrix : ndarray, shape (size * size, n_channels)
        ``maps = matrix @ data``; rows of pixels outside the head are zero.
        Channels closer than :data:`COINCIDENT_DISTANCE` (1 mm) to each other
        are one site whose value is their mean (each gets half the column of
        a pair).
    mask : ndarray of bool, shape (size, size)
        Pixels inside the head.

    See Also
    --------
    azimuthal_equidistant, mne_brainforge.nn.BrainForgeModel.topomap

    Examples
    --------
    >>> import mne
    >>> import numpy as np
    >>> from mne_brainforge.nn import topomap_matrix
    >>> montage = mne.channels.make_standard_montage("biosemi64")
    >>> info = mne.create_info(montage.ch_names, 250.0, "eeg").set_montage(montage)
    >>> pos = np.array([ch["loc"][:3] for ch in info["chs"]])
    >>> matrix, mask = topomap_matrix(pos, size=16, method="rbf")
    >>> matrix.shape, mask.shape
    ((256, 64), (16, 16))
    >>> maps = (matrix @ data).reshape(16, 16, -1)  # data: (64, n_times)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    pos = np.asarray(pos, float)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) < 4:
        raise ValueError(
            f"pos must be (n_channels >= 4, 3) positions, got shape {pos.shape}."
        )
    groups = coincident_groups(pos)
    if groups:  # interpolate the distinct sites, each from its channels' mean
        site_of = np.arange(len(pos))
        for group in groups:
            site_of[group] = group[0]
        sites, site_of = np.unique(site_of, return_inverse=True)
        average = np.zeros((len(sites), len(pos)))
        average[site_of, np.arange(len(pos))] = 1.0
        average /= average.sum(axis=1, keepdims=True)
        site_pos = average @ pos
        if len(sites) < 4:
            raise ValueError(
                f"pos has only {len(sites)} distinct sites (closer than "
                f"{COINCIDENT_DISTANCE * 1e3:g} mm are one site); need at least 4."
            )
        matrix, mask = topomap_matrix(
            site_pos, size, method, centre=centre, radius=radius
        )
        return matrix @ average, mask
    xy = azimuthal_equidistant(pos, centre)
    pixels, mask = grid(size, radius)
    inside = mask.ravel()
    eye = np.eye(len(pos))
    if method in ("bilinear", "bicubic"):
        interp = (
            LinearNDInterpolator if method == "bilinear" else CloughTocher2DInterpolator
        )
        weights = interp(xy, eye, fill_value=np.nan)(pixels[inside])
        outside_hull = np.isnan(weights[:, 0])
        nearest = cKDTree(xy).query(pixels[inside][outside_hull])[1]
        weights[outside_hull] = eye[nearest]
    else:
        weights = _rbf_weights(xy, pixels[inside], method)
    matrix = np.zeros((size * size, len(pos)))
    matrix[inside] = weights
    return matrix, mask


def _rbf_weights(xy, targets, method):
    """Weights of a radial-basis interpolant with a linear polynomial term.

    Solves ``[[K, P], [P.T, 0]] [w; a] = [I; 0]`` once for all channels (``K``
    the kernel between electrodes, ``P = [1, x, y]``), so the weights at the
    targets are ``[K_t, P_t] @ [w; a]``: a few small dense products, fast
    enough to run per training sample.
    """
    if method == "rbf":  # thin-plate spline r^2 log r

        def kernel(r):
            return np.where(r > 0, r**2 * np.log(np.maximum(r, 1e-12)), 0.0)
    else:
        width = _spacing(xy)

        def kernel(r):
            return np.exp(-((r / width) ** 2))

    n = len(xy)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(cdist(xy, xy))
    system[:n, n:] = np.c_[np.ones(n), xy]
    system[n:, :n] = system[:n, n:].T
    rhs = np.zeros((n + 3, n))
    rhs[:n] = np.eye(n)
    coefs = (
        np.linalg.lstsq(system, rhs, rcond=None)[0]
        if n < 6
        else np.linalg.solve(system, rhs)
    )
    basis = np.c_[kernel(cdist(targets, xy)), np.ones(len(targets)), targets]
    return basis @ coefs


def _spacing(xy):
    """Median distance between an electrode and its nearest neighbour."""
    return float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))


def masked_topomap_matrix(pos, channel_mask, size=24, method="rbf"):
    """:func:`topomap_matrix` for the channels in use, as columns of the full montage.

    Parameters
    ----------
    pos : ndarray, shape (n_channels, 3)
        Positions of all channels of the montage.
    channel_mask : ndarray of bool, shape (n_channels,)
        Channels in use; the others get zero columns.
    size, method : see :func:`topomap_matrix`.

    Returns
    -------
    matrix : ndarray, shape (size * size, n_channels)
    """
    channel_mask = np.asarray(channel_mask, bool)
    matrix = np.zeros((size * size, len(pos)))
    matrix[:, channel_mask] = topomap_matrix(pos[channel_mask], size, method)[0]
    return matrix
