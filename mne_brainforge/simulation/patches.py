"""Random cortical source patches grown over a parcellation's regions.

A patch is a contiguous set of regions of a :class:`~.parcellation.Parcellation`
grown from a seed region, with per-source amplitude weights that decay as a
Gaussian of the geodesic distance from the patch centre. Drawing one takes about
a millisecond, so patches can be drawn on the fly in a training data loader.
"""

import numbers

import numpy as np
from mne.utils import logger
from scipy.sparse.csgraph import dijkstra

from ..head.parcellation import Parcellation

#: Default patch extent: a number of rings drawn uniformly from 1 to 3.
DEFAULT_RINGS = (1, 3)
#: Default maximum number of simultaneous patches of :func:`random_patches`.
DEFAULT_MAX_SOURCES = 3
#: Mean probability that a frontier region joins the patch in a ring.
_BASE_P = 0.6


class Patch:
    """A contiguous set of regions with per-source amplitude weights.

    Made by :func:`grow_patch` and :func:`random_patches`; not meant to be
    built directly.

    Parameters
    ----------
    **kwargs
        The attributes below, all of them, by name.

    Attributes
    ----------
    regions : ndarray of int
        The regions of the patch, in growth order (the seed region first).
    seed_region : int
        The region the patch grew from.
    hemi : int
        Hemisphere index (as :attr:`Parcellation.hemis`).
    n_rings : int
        Number of rings grown around the seed region (0 = the seed region only).
    sources : ndarray of int
        The patch's sources (forward order, sorted).
    weights : ndarray, shape (len(sources),)
        Amplitude weight of each of ``sources``, in (0, 1]: 1 at the centre,
        decaying as ``exp(-d**2 / (2 * sigma**2))`` with ``d`` the geodesic
        distance from the centre.
    distances : ndarray, shape (len(sources),)
        Geodesic distance (m) of each of ``sources`` from the centre, along the
        source graph within the patch.
    centre_index : int
        The source at the patch centre: the centre (medoid) of the seed region.
    sigma : float
        Width of the Gaussian (m).
    area : float
        Cortical area of the patch (m^2).
    direction : ndarray, shape (3,)
        Unit vector (tangent to the cortex at the centre) the growth was biased
        towards.
    anisotropy : float
        Strength of that bias, in [0, 1] (0 = isotropic growth).
    n_sources_total : int
        Number of sources of the parcellation (length of :meth:`dense_weights`).

    See Also
    --------
    grow_patch, random_patches

    Examples
    --------
    >>> from mne_brainforge.simulation import grow_patch
    >>> patch = grow_patch(parcellation, 42, extent=2, rng=0)
    >>> patch.seed_region, patch.n_rings
    (42, 2)
    >>> weights = patch.dense_weights()  # 1 at the centre, 0 outside the patch
    """

    __slots__ = (
        "regions",
        "seed_region",
        "hemi",
        "n_rings",
        "sources",
        "weights",
        "distances",
        "centre_index",
        "sigma",
        "area",
        "direction",
        "anisotropy",
        "n_sources_total",
    )

    def __init__(self, **kwargs):
        for key in self.__slots__:
            setattr(self, key, kwargs.pop(key))
        assert not kwargs

    def __repr__(self):
        return (
            f"<Patch | {len(self.regions)} regions from region {self.seed_region}, "
            f"{self.n_rings} rings, {len(self.sources)} sources, "
            f"{self.area * 1e4:.1f} cm^2, sigma {self.sigma * 1e3:.1f} mm>"
        )

    def dense_weights(self):
        """Return the weights of all sources (zero outside the patch).

        Returns
        -------
        weights : ndarray, shape (n_sources_total,)
            Amplitude weight of each source of the parcellation.

        Examples
        --------
        A source estimate of the patch (``fwd`` on the parcellation's source space):

        >>> import mne
        >>> import numpy as np
        >>> vertices = [s["vertno"] for s in fwd["src"]]
        >>> data = 10e-9 * np.outer(patch.dense_weights(), np.hanning(100))  # A·m
        >>> stc = mne.SourceEstimate(data, vertices, tmin=0.0, tstep=0.01)
        """
        out = np.zeros(self.n_sources_total)
        out[self.sources] = self.weights
        return out


def _get_rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _draw(value, name, rng, *, integer, minimum):
    """A fixed value, or a uniform draw from a (low, high) range (inclusive)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be a number or a (low, high) pair, got {value!r}."
            )
        low, high = (
            _draw(v, name, rng, integer=integer, minimum=minimum) for v in value
        )
        if low > high:
            raise ValueError(f"{name}: low must be <= high, got {value!r}.")
        if integer:
            return int(rng.integers(low, high + 1))
        return float(rng.uniform(low, high))
    ok_type = numbers.Integral if integer else numbers.Real
    if not isinstance(value, ok_type) or isinstance(value, bool):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind} or a (low, high) pair, got {value!r}.")
    if not value >= minimum or not np.isfinite(value):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value) if integer else float(value)


def _excluded_mask(parcellation, exclude):
    mask = np.zeros(parcellation.n_regions, bool)
    if exclude is None:
        return mask
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != mask.shape:
            raise ValueError(
                f"A boolean exclude must have shape ({parcellation.n_regions},), got "
                f"{exclude.shape}."
            )
        return exclude.copy()
    exclude = exclude.astype(np.intp, casting="same_kind").ravel()
    if exclude.size and (exclude.min() < 0 or exclude.max() >= parcellation.n_regions):
        raise ValueError("exclude contains region indices out of range.")
    mask[exclude] = True
    return mask


class _GrowError(ValueError):
    pass


def _grow(parcellation, seed_region, mode, target, blocked, rng):
    """Grow the regions; return (regions, n_rings, direction, anisotropy)."""
    parc = parcellation
    centre = parc.centres[seed_region]
    # random growth direction in the tangent plane at the centre
    direction = rng.normal(size=3)
    if parc.normals is not None:
        normal = parc.normals[parc.centre_index[seed_region]]
        direction -= (direction @ normal) * normal
    direction /= np.linalg.norm(direction)
    anisotropy = float(rng.uniform())

    in_patch = blocked.copy()
    in_patch[seed_region] = True
    regions = [seed_region]
    area = parc.areas[seed_region]
    n_rings = 0
    while True:
        if mode == "rings" and n_rings >= target:
            break
        if mode == "n_regions" and len(regions) >= target:
            break
        if mode == "area" and area >= target:
            break
        cand = np.unique(np.concatenate([parc.neighbours[r] for r in regions]))
        cand = cand[~in_patch[cand]]
        if len(cand) == 0:
            raise _GrowError(
                f"Cannot grow the patch from region {seed_region} beyond "
                f"{len(regions)} regions ({n_rings} rings): no free neighbouring "
                "region left in its hemisphere."
            )
        vec = parc.centres[cand] - centre
        cos = (vec @ direction) / np.maximum(np.linalg.norm(vec, axis=1), 1e-12)
        prob = np.clip(_BASE_P * (1.0 + anisotropy * cos), 0.02, 1.0)
        keep = rng.random(len(cand)) < prob
        if not keep.any():
            keep[np.argmax(prob)] = True
        chosen, prob = cand[keep], prob[keep]
        if mode != "rings":
            # weighted random order (larger prob first, on average) to stop exactly
            chosen = chosen[np.argsort(-(rng.random(len(chosen)) ** (1.0 / prob)))]
            if mode == "n_regions":
                chosen = chosen[: target - len(regions)]
            else:
                cum = area + np.cumsum(parc.areas[chosen])
                chosen = chosen[: np.searchsorted(cum, target) + 1]
        regions.extend(chosen.tolist())
        in_patch[chosen] = True
        area += parc.areas[chosen].sum()
        n_rings += 1
    return np.array(regions, dtype=np.intp), n_rings, direction, anisotropy


def _weights(parcellation, seed_region, regions, sigma):
    parc = parcellation
    sources = np.sort(np.concatenate([parc.region_sources[r] for r in regions]))
    centre = parc.centre_index[seed_region]
    sub = parc.graph[sources][:, sources]
    distances = dijkstra(sub, directed=False, indices=np.searchsorted(sources, centre))
    if sigma is None:
        sigma = 0.5 * distances.max()
    if sigma > 0:
        weights = np.exp(-0.5 * (distances / sigma) ** 2)
    else:  # a single-source patch
        weights = np.ones(len(sources))
    return sources, weights, distances, float(sigma)


def grow_patch(
    parcellation,
    seed_region,
    *,
    extent=None,
    n_regions=None,
    area=None,
    sigma=None,
    exclude=None,
    rng=None,
):
    """Grow a contiguous patch of regions from a seed region.

    The patch grows ring by ring over the region adjacency: each ring adds a
    random subset (at least one) of the free regions neighbouring the patch.
    Growth is biased towards a random direction tangent to the cortex: a
    neighbour whose centre lies at angle ``theta`` from that direction joins
    with probability ``0.6 * (1 + a * cos(theta))`` (clipped to [0.02, 1]),
    ``a`` drawn uniformly in [0, 1] per patch, so patches range from round to
    elongated.

    Parameters
    ----------
    parcellation : Parcellation
        The regions (see
        :func:`~mne_brainforge.simulation.parcellate_source_space`).
    seed_region : int
        The region to grow from; its centre is the patch centre.
    extent : int | tuple of int | None
        Number of rings to grow (0 = the seed region alone), or a ``(low,
        high)`` range to draw it from uniformly. If None (default) and neither
        ``n_regions`` nor ``area`` is given, ``(1, 3)``.
    n_regions : int | tuple of int | None
        Alternatively, the exact number of regions of the patch (or a ``(low,
        high)`` range): rings are grown until it is reached, the last one cut.
    area : float | tuple of float | None
        Alternatively, a target cortical area (m^2) (or a ``(low, high)``
        range): regions are added until the patch area reaches it (so the area
        exceeds it by less than one region's).
    sigma : float | None
        Width (m) of the Gaussian amplitude profile. If None (default), half
        the largest geodesic distance from the centre to a source of the patch,
        so that weights fall to ``exp(-2) = 0.14`` at the patch's far end.
    exclude : array-like of int | array of bool | None
        Regions the patch may not include (e.g. other patches' regions).
    rng : None | int | numpy.random.Generator
        Random generator or seed.

    Returns
    -------
    patch : Patch
        The patch. Its weights are computed from geodesic distances along the
        source graph restricted to the patch's sources (a Dijkstra over a few
        hundred sources).

    Raises
    ------
    ValueError
        Bad arguments, or a patch that cannot grow as asked (its hemisphere, or
        the part of it not excluded, has too few regions).

    See Also
    --------
    random_patches, parcellate_source_space

    Examples
    --------
    >>> from mne_brainforge.simulation import grow_patch
    >>> patch = grow_patch(parcellation, 42, extent=(1, 3), rng=0)
    >>> patch = grow_patch(parcellation, 42, area=5e-4, rng=0)  # about 5 cm^2
    >>> patch.area >= 5e-4
    True
    """
    if not isinstance(parcellation, Parcellation):
        raise TypeError(
            f"parcellation must be a Parcellation, got {type(parcellation).__name__}."
        )
    rng = _get_rng(rng)
    n_total = parcellation.n_regions
    if not isinstance(seed_region, numbers.Integral) or not 0 <= seed_region < n_total:
        raise ValueError(
            f"seed_region must be an int in [0, {n_total}), got {seed_region!r}."
        )
    seed_region = int(seed_region)
    given = dict(extent=extent, n_regions=n_regions, area=area)
    given = {k: v for k, v in given.items() if v is not None}
    if len(given) > 1:
        raise ValueError(
            f"Give at most one of extent, n_regions and area, got {sorted(given)}."
        )
    if not given:
        given = dict(extent=DEFAULT_RINGS)
    ((kind, value),) = given.items()
    if kind == "extent":
        mode, target = "rings", _draw(value, "extent", rng, integer=True, minimum=0)
    elif kind == "n_regions":
        mode = "n_regions"
        target = _draw(value, "n_regions", rng, integer=True, minimum=1)
        in_hemi = np.sum(parcellation.hemis == parcellation.hemis[seed_region])
        if target > in_hemi:
            raise ValueError(
                f"n_regions={target} exceeds the {in_hemi} regions of the seed "
                "region's hemisphere (patches never cross hemispheres)."
            )
    else:
        mode, target = "area", _draw(value, "area", rng, integer=False, minimum=0)
    if sigma is not None:
        sigma = _draw(sigma, "sigma", rng, integer=False, minimum=0)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}.")
    blocked = _excluded_mask(parcellation, exclude)
    if blocked[seed_region]:
        raise ValueError(f"seed_region {seed_region} is excluded.")

    regions, n_rings, direction, anisotropy = _grow(
        parcellation, seed_region, mode, target, blocked, rng
    )
    sources, weights, distances, sigma = _weights(
        parcellation, seed_region, regions, sigma
    )
    return Patch(
        regions=regions,
        seed_region=seed_region,
        hemi=int(parcellation.hemis[seed_region]),
        n_rings=n_rings,
        sources=sources,
        weights=weights,
        distances=distances,
        centre_index=int(parcellation.centre_index[seed_region]),
        sigma=sigma,
        area=float(parcellation.areas[regions].sum()),
        direction=direction,
        anisotropy=anisotropy,
        n_sources_total=parcellation.n_sources,
    )


def _max_min_separation(dist, n):
    """Farthest-point packing of n centres: a 2-approximation of the largest
    achievable minimum pairwise distance (the optimum is at most twice it)."""
    first = np.unravel_index(np.argmax(dist), dist.shape)[0]
    chosen = [first]
    nearest = dist[first].copy()
    for _ in range(n - 1):
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        nearest = np.minimum(nearest, dist[nxt])
    sub = dist[np.ix_(chosen, chosen)]
    return sub[~np.eye(n, dtype=bool)].min()


def random_patches(
    parcellation,
    n_sources=None,
    *,
    max_sources=DEFAULT_MAX_SOURCES,
    min_separation=None,
    extent=None,
    n_regions=None,
    area=None,
    sigma=None,
    allow_overlap=False,
    max_tries=100,
    rng=None,
):
    """Draw simultaneous random source patches.

    Seed regions are drawn uniformly among the regions (regions have similar
    sizes, so this is close to uniform over the cortex), each at least
    ``min_separation`` from the others, then each patch is grown with
    :func:`grow_patch`.

    Parameters
    ----------
    parcellation : Parcellation
        The regions.
    n_sources : int | None
        Number of simultaneous patches (sources). If None (default), drawn
        uniformly from 1 to ``max_sources``.
    max_sources : int
        Largest number of patches when ``n_sources`` is None (default 3).
    min_separation : float | None
        Smallest Euclidean distance (m) between the centres of two patches'
        seed regions. None (default) or 0: no constraint.
    extent, n_regions, area, sigma : see :func:`grow_patch`
        Size and profile of each patch (ranges are drawn per patch).
    allow_overlap : bool
        If False (default), patches do not share regions: each one grows
        around the previous ones.
    max_tries : int
        Number of attempts at placing all patches before giving up.
    rng : None | int | numpy.random.Generator
        Random generator or seed.

    Returns
    -------
    patches : list of Patch
        The patches, in drawing order.

    Raises
    ------
    ValueError
        Bad arguments; a request that is impossible (e.g. more patches than
        regions, or a ``min_separation`` larger than twice what a
        farthest-point packing of ``n_sources`` centres achieves, which bounds
        the best possible); or no placement found in ``max_tries`` attempts.

    See Also
    --------
    grow_patch, EEGSimulator

    Examples
    --------
    >>> from mne_brainforge.simulation import random_patches
    >>> patches = random_patches(parcellation, 2, min_separation=0.03, rng=0)
    >>> len(patches)
    2
    >>> sources = [p.sources for p in patches]  # source indices (forward order)
    """
    if not isinstance(parcellation, Parcellation):
        raise TypeError(
            f"parcellation must be a Parcellation, got {type(parcellation).__name__}."
        )
    rng = _get_rng(rng)
    parc = parcellation
    max_sources = _draw(max_sources, "max_sources", rng, integer=True, minimum=1)
    if n_sources is None:
        n_sources = int(rng.integers(1, max_sources + 1))
    n_sources = _draw(n_sources, "n_sources", rng, integer=True, minimum=1)
    max_tries = _draw(max_tries, "max_tries", rng, integer=True, minimum=1)
    if n_sources > parc.n_regions:
        raise ValueError(
            f"Cannot place {n_sources} patches on {parc.n_regions} regions."
        )
    if min_separation is not None:
        min_separation = _draw(
            min_separation, "min_separation", rng, integer=False, minimum=0
        )
    dist = parc.centre_distances if min_separation else None
    if dist is not None and n_sources > 1:
        best = _max_min_separation(dist, n_sources)
        if min_separation > 2 * best:
            raise ValueError(
                f"Impossible: {n_sources} patches cannot be "
                f"{min_separation * 1e3:.0f} mm apart on this cortex (at most "
                f"{2 * best * 1e3:.0f} mm is possible); lower min_separation or "
                "n_sources."
            )

    for attempt in range(max_tries):
        free = np.ones(parc.n_regions, bool)
        patches = []
        for _ in range(n_sources):
            cand = free.copy()
            if dist is not None:
                for p in patches:
                    cand &= dist[p.seed_region] >= min_separation
            cand = np.flatnonzero(cand)
            if len(cand) == 0:
                break
            seed = int(cand[rng.integers(len(cand))])
            try:
                patch = grow_patch(
                    parc,
                    seed,
                    extent=extent,
                    n_regions=n_regions,
                    area=area,
                    sigma=sigma,
                    exclude=None if allow_overlap else ~free,
                    rng=rng,
                )
            except _GrowError:
                break
            patches.append(patch)
            if allow_overlap:
                free[seed] = False
            else:
                free[patch.regions] = False
        if len(patches) == n_sources:
            if attempt:
                logger.debug(f"random_patches: placed after {attempt + 1} attempts")
            return patches
    raise ValueError(
        f"Could not place {n_sources} patches (min_separation={min_separation}, "
        f"allow_overlap={allow_overlap}) in {max_tries} attempts; lower n_sources, "
        "min_separation or the patch size."
    )
