"""A family of template head models for domain randomisation of the simulation.

The family holds the cortex-normal gains of several forward models of the
template (other skull conductivities and thicknesses) for one dense "superset"
montage. Caps of other layouts are index subsets of the superset: each cap
electrode is the nearest superset electrode plus an offset in the scalp's
tangent plane, and its gain row is a first-order (linear) interpolation of the
gain around that superset electrode (see :class:`HeadModelFamily`). The same
interpolation moves electrodes by a random jitter per draw.
"""

from dataclasses import dataclass

import mne
import numpy as np
from mne.utils import logger, verbose
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from ..utils import array_sha256, cached_file, check_number, get_data_path
from .forward import cortex_normal, fixed_orientation_gain, make_fsaverage_forward
from .montage import make_montage_info
from .parcellation import source_graph
from .template import DEFAULT_CONDUCTIVITY

#: (skull conductivity S/m, largest skull thickness m) of the default family:
#: the template, a resistive and a conductive skull, a thin and a thick skull.
DEFAULT_HEADS = (
    (0.006, 7e-3),
    (0.003, 7e-3),
    (0.015, 7e-3),
    (0.006, 5e-3),
    (0.006, 9e-3),
)
#: The default superset montage: the 10-05 system (335 EEG positions).
SUPERSET_MONTAGE = next(
    name
    for name in ("fsaverage_1005", "standard_1005")
    if name in mne.channels.get_builtin_montages()
)
# Centre of the head (m, fsaverage head coordinates) defining the scalp's
# tangent planes; the centre of the sphere MNE fits to the template scalp.
_HEAD_CENTRE = np.array([0.0, 0.0, 0.04])
# Superset neighbours used to estimate the gain's tangential gradient
_N_NEIGHBOURS = 6

#: Channel names of the classic caps drawn as channel sets (all 10-05 names).
CAP_CHANNELS = {
    "10-20 (19)": "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2",
    "10-20 (21)": "Fp1 Fpz Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 Oz O2",
    "10-10 (32)": (
        "Fp1 Fp2 F7 F3 Fz F4 F8 FC5 FC1 FC2 FC6 T7 C3 Cz C4 T8 TP9 CP5 CP1 CP2 "
        "CP6 TP10 P7 P3 Pz P4 P8 PO9 O1 Oz O2 PO10"
    ),
    "10-10 (64)": (
        "Fp1 Fpz Fp2 AF7 AF3 AFz AF4 AF8 F7 F5 F3 F1 Fz F2 F4 F6 F8 FT7 FC5 FC3 "
        "FC1 FCz FC2 FC4 FC6 FT8 T7 C5 C3 C1 Cz C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPz "
        "CP2 CP4 CP6 TP8 P7 P5 P3 P1 Pz P2 P4 P6 P8 PO7 PO3 POz PO4 PO8 O1 Oz O2 "
        "Iz TP9 TP10"
    ),
}
#: Standard montages drawn as channel sets (their positions, not names).
CAP_MONTAGES = ("biosemi16", "biosemi32", "biosemi64", "biosemi128", "GSN-HydroCel-256")


@dataclass(frozen=True)
class ChannelSet:
    """The electrodes of one cap, as positions relative to superset electrodes.

    Attributes
    ----------
    name : str
        Name of the cap.
    ch_names : tuple of str
        Its channel names.
    base : ndarray of int, shape (n_channels,)
        Index of the nearest superset electrode of each channel.
    offset : ndarray, shape (n_channels, 2)
        Position of each channel relative to its base electrode, in the base's
        tangent plane (m).
    pos : ndarray, shape (n_channels, 3)
        Nominal positions (m, head coordinates).
    """

    name: str
    ch_names: tuple
    base: np.ndarray
    offset: np.ndarray
    pos: np.ndarray

    def __post_init__(self):
        if len(self.base) == 0:
            raise ValueError(
                f"The channel set {self.name!r} is empty: give at least one channel "
                "that lies on the scalp near the family's montage."
            )

    @property
    def n_channels(self):
        """Number of channels."""
        return len(self.base)

    def __repr__(self):
        return f"<ChannelSet {self.name!r}: {self.n_channels} channels>"


def _tangent_frames(pos):
    """Orthonormal tangent bases (n, 2, 3) of the scalp at each position."""
    normal = pos - _HEAD_CENTRE
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    ref = np.where(np.abs(normal[:, 2:]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(ref, normal)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return np.stack([u, np.cross(normal, u)], axis=1)


def _source_key(src):
    """Hash of a source space's sources in use (vertices and positions)."""
    vertno = np.concatenate([s["vertno"] for s in src])
    rr = np.concatenate([s["rr"][s["vertno"]] for s in src]).astype(np.float32)
    return array_sha256(vertno)[:16] + array_sha256(np.round(rr, 5))[:16]


class HeadModelFamily:
    """Cortex-normal gains of several head models of one source space and montage.

    Parameters
    ----------
    forwards : list of mne.Forward
        EEG forwards on the same surface source space and the same channels
        (e.g. the template with other skull conductivities). Free-orientation
        forwards are converted to the cortex-normal orientation.
    params : list of dict | None
        A description of each head model (e.g. ``{'skull_conductivity': 0.006,
        'skull_thickness': 0.007}``), kept for reports; None for empty dicts.
    verbose : bool | str | int | None
        Control verbosity of the logging output (see :func:`mne.verbose`).

    Attributes
    ----------
    gains : ndarray, shape (n_models, n_channels, n_sources), float32
        Gains (V per A·m), rows in the order of ``ch_names``.
    ch_names : list of str
        The superset channels.
    ch_pos : ndarray, shape (n_channels, 3)
        Their positions (m, head coordinates).
    src : mne.SourceSpaces
        The source space (of the first forward).
    params : list of dict
        The head models' descriptions.
    stencil : ndarray of int, shape (n_channels, 1 + n_neighbours)
        Each superset electrode followed by its nearest neighbours.
    stencil_pinv : ndarray, shape (n_channels, 2, n_neighbours)
        Least-squares operators from the neighbours' gain differences to the
        gain's gradient in the tangent plane (see Notes).
    tangent : ndarray, shape (n_channels, 2, 3)
        Tangent bases of the scalp at each superset electrode.

    Notes
    -----
    Electrode positions off the superset (other caps, jitter) are
    approximated to first order: the gain at ``e + d`` (``d`` in the tangent
    plane at superset electrode ``e``) is ``L_e + d^T G_e``, with ``G_e`` the
    least-squares tangential gradient from the gain differences to the
    ``n_neighbours`` nearest superset electrodes. A channel's gain row is then
    a linear combination of ``1 + n_neighbours`` superset rows
    (:meth:`interpolation`), so a whole batch of caps and jitters is one
    sparse channel matrix applied to the superset gain.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> from mne_brainforge.head import HeadModelFamily, make_montage_info
    >>> info = make_montage_info("fsaverage_1005")
    >>> family = HeadModelFamily([bf.make_fsaverage_forward(info)])
    >>> family.channel_set("biosemi64")
    <ChannelSet 'biosemi64': 64 channels>
    """

    @verbose
    def __init__(self, forwards, params=None, *, verbose=None):
        if isinstance(forwards, mne.Forward) or not len(forwards):
            raise TypeError(
                "forwards must be a non-empty list of mne.Forward (one per head model)."
            )
        gains, ch_names = [], None
        for k, fwd in enumerate(forwards):
            if not isinstance(fwd, mne.Forward):
                raise TypeError(
                    f"forwards[{k}] is a {type(fwd).__name__}, not a Forward."
                )
            if fwd["source_ori"] != mne.io.constants.FIFF.FIFFV_MNE_FIXED_ORI:
                logger.info(f"Converting forward {k} to cortex-normal orientation")
            fixed = cortex_normal(fwd)
            gain, names = fixed_orientation_gain(fixed)
            if k == 0:
                ch_names, key, src, info = (
                    names,
                    _source_key(fwd["src"]),
                    fwd["src"],
                    fixed["info"],
                )
            elif names != ch_names:
                raise ValueError(
                    f"forwards[{k}] has other EEG channels than forwards[0]: compute "
                    "all forwards of a family for the same montage."
                )
            elif _source_key(fwd["src"]) != key:
                raise ValueError(
                    f"forwards[{k}] is on another source space than forwards[0]: a "
                    "family shares one source space (the sources are drawn on it); "
                    "compute all forwards on the same source space."
                )
            gains.append(gain.astype(np.float32))
        if len(ch_names) < _N_NEIGHBOURS + 1:
            raise ValueError(
                f"The family's montage has {len(ch_names)} EEG channels; at least "
                f"{_N_NEIGHBOURS + 1} are needed to interpolate electrode positions."
            )
        self.gains = np.stack(gains)
        self.ch_names, self.src, self.source_key = list(ch_names), src, key
        picks = mne.pick_channels(info["ch_names"], ch_names, ordered=True)
        self.ch_pos = np.array([info["chs"][p]["loc"][:3] for p in picks])
        self.params = [dict(p) for p in params] if params else [{} for _ in gains]
        if len(self.params) != len(gains):
            raise ValueError(
                f"params has {len(self.params)} entries for {len(gains)} forwards."
            )
        self.tangent = _tangent_frames(self.ch_pos)
        _, nbrs = cKDTree(self.ch_pos).query(self.ch_pos, _N_NEIGHBOURS + 1)
        self.stencil = nbrs  # column 0 is the electrode itself
        delta = self.ch_pos[nbrs[:, 1:]] - self.ch_pos[:, None]  # (n, K, 3)
        planar = np.einsum("nkx,ndx->nkd", delta, self.tangent)  # (n, K, 2)
        self.stencil_pinv = np.linalg.pinv(planar)  # (n, 2, K)
        logger.info(f"Head-model family: {self!r}")

    @property
    def n_models(self):
        """Number of head models."""
        return self.gains.shape[0]

    @property
    def n_channels(self):
        """Number of superset channels."""
        return self.gains.shape[1]

    @property
    def n_sources(self):
        """Number of sources."""
        return self.gains.shape[2]

    def __repr__(self):
        return (
            f"<HeadModelFamily: {self.n_models} head models, {self.n_channels} "
            f"channels, {self.n_sources} sources>"
        )

    def interpolation(self, base, offset):
        """Superset rows and weights whose combination is the gain at ``base + offset``.

        Parameters
        ----------
        base : ndarray of int, shape (...)
            Superset electrodes.
        offset : ndarray, shape (..., 2)
            Displacements (m) in their tangent planes.

        Returns
        -------
        index : ndarray of int, shape (..., 1 + n_neighbours)
            Superset rows.
        weight : ndarray, shape (..., 1 + n_neighbours)
            Their weights (they sum to 1): ``gain = weight @ gains[k][index]``.
        """
        coef = np.einsum("...d,...dk->...k", offset, self.stencil_pinv[base])
        weight = np.concatenate([1 - coef.sum(-1, keepdims=True), coef], axis=-1)
        return self.stencil[base], weight

    def channel_set(self, montage, *, name=None, picks=None, max_distance=0.015):
        """The channels of a cap as a :class:`ChannelSet` of this family.

        Parameters
        ----------
        montage : str | mne.channels.DigMontage | mne.Info
            A montage (see :func:`~mne_brainforge.head.make_montage_info`) or an
            Info with positions.
        name : str | None
            Name of the set; default the montage's name.
        picks : list of str | None
            Channels of the montage to keep; None keeps all.
        max_distance : float
            Channels farther than this (m) from every superset electrode
            (e.g. cheek and neck electrodes of dense nets) are left out.

        Returns
        -------
        channel_set : ChannelSet
            The set.
        """
        max_distance = check_number(max_distance, "max_distance", minimum=0)
        info = montage if isinstance(montage, mne.Info) else make_montage_info(montage)
        if name is None:
            name = montage if isinstance(montage, str) else "custom"
        eeg = mne.pick_types(info, eeg=True, exclude=())
        names = [info["ch_names"][p] for p in eeg]
        pos = np.array([info["chs"][p]["loc"][:3] for p in eeg]).reshape(-1, 3)
        if picks is not None:
            missing = sorted(set(picks) - set(names))
            if missing:
                raise ValueError(f"Channels {missing} are not in the montage {name!r}.")
            keep = [names.index(p) for p in picks]
            names, pos = [names[i] for i in keep], pos[keep]
        dist, base = cKDTree(self.ch_pos).query(pos) if len(pos) else ([], [])
        ok = np.asarray(dist) <= max_distance
        if len(pos) and not ok.all():
            logger.info(
                f"{name}: {np.sum(~ok)} channels farther than {max_distance * 1e3:g} "
                "mm from the family's montage left out"
            )
        base = np.asarray(base, int)[ok]
        pos = pos[ok]
        offset = np.einsum("nx,ndx->nd", pos - self.ch_pos[base], self.tangent[base])
        return ChannelSet(
            name=name,
            ch_names=tuple(n for n, o in zip(names, ok) if o),
            base=base,
            offset=offset,
            pos=pos,
        )

    def default_channel_sets(self):
        """Channel sets of common caps: 10-20, 10-10, BioSemi 16-128, HydroCel 256.

        Returns
        -------
        sets : list of ChannelSet
            The classic 10-20 and 10-10 caps (:data:`CAP_CHANNELS`) by name on
            the 10-05 montage, and the caps of :data:`CAP_MONTAGES` by position.
        """
        sets = [
            self.channel_set(SUPERSET_MONTAGE, name=name, picks=chs.split())
            for name, chs in CAP_CHANNELS.items()
        ]
        return sets + [self.channel_set(m) for m in CAP_MONTAGES]


@verbose
def make_head_model_family(
    heads=DEFAULT_HEADS, *, montage=SUPERSET_MONTAGE, n_jobs=None, verbose=None
):
    """Build (or read from the cache) a family of template head models.

    Parameters
    ----------
    heads : sequence of (float, float)
        (skull conductivity in S/m, largest skull thickness in m) per head
        model; brain and scalp keep the template's conductivity. Each head
        other than the template computes and caches a BEM solution on first use
        (about a minute), and each forward (about a minute for 335 channels)
        is cached as a ``-fwd.fif`` under ``get_data_path() / 'forwards'``.
    montage : str
        Name of the superset montage (an MNE standard montage).
    n_jobs : int | None
        Jobs of :func:`mne.make_forward_solution`.
    %(verbose)s

    Returns
    -------
    family : HeadModelFamily
        The family, ``params`` recording each head.

    Examples
    --------
    >>> from mne_brainforge.head import make_head_model_family
    >>> family = make_head_model_family(((0.006, 7e-3), (0.015, 7e-3)))
    """
    if (
        not isinstance(montage, str)
        or montage not in mne.channels.get_builtin_montages()
    ):
        raise ValueError(
            f"montage must be the name of an MNE standard montage, got {montage!r}; "
            "for other montages build the forwards and pass them to HeadModelFamily."
        )
    heads = [
        (
            check_number(s, "skull conductivity", minimum=0, strict=True),
            check_number(t, "skull thickness", minimum=0, strict=True),
        )
        for s, t in heads
    ]
    info = make_montage_info(montage)
    forwards, params = [], []
    for skull, thickness in heads:
        conductivity = (DEFAULT_CONDUCTIVITY[0], skull, DEFAULT_CONDUCTIVITY[2])
        path = (
            get_data_path()
            / "forwards"
            / f"{montage}-{skull:g}S-{thickness * 1e3:g}mm-fwd.fif"
        )

        def _write(tmp, conductivity=conductivity, thickness=thickness):
            fwd = make_fsaverage_forward(
                info,
                conductivity=conductivity,
                skull_thickness=thickness,
                n_jobs=n_jobs,
                verbose=verbose,
            )
            # MNE writes the free-orientation solution (converted on loading);
            # the temporary name does not end in -fwd.fif: no naming warning
            mne.write_forward_solution(tmp, fwd, verbose="error")

        cached_file(path, _write)
        forwards.append(mne.read_forward_solution(path, verbose="error"))
        params.append(dict(skull_conductivity=skull, skull_thickness=thickness))
    return HeadModelFamily(forwards, params)


@verbose
def geodesic_neighbourhoods(src, radius=0.03, *, verbose=None):
    """Sources within a geodesic radius of every source, sorted by distance.

    Computed once per source space with Dijkstra on
    :func:`~mne_brainforge.head.source_graph` and cached under
    ``get_data_path() / 'neighbourhoods'``.

    Parameters
    ----------
    src : mne.SourceSpaces
        A surface source space.
    radius : float
        Largest geodesic distance (m).
    %(verbose)s

    Returns
    -------
    index : ndarray of int32, shape (n_sources, n_max)
        Row ``i``: the sources within ``radius`` of source ``i`` (itself first),
        by increasing distance, padded with ``i``.
    distance : ndarray of float32, shape (n_sources, n_max)
        Their geodesic distances (m), padded with ``inf``.

    Examples
    --------
    >>> from mne_brainforge.head import geodesic_neighbourhoods
    >>> index, distance = geodesic_neighbourhoods(fwd["src"], 0.03)
    """
    radius = check_number(radius, "radius", minimum=0, strict=True)
    path = (
        get_data_path()
        / "neighbourhoods"
        / f"{_source_key(src)}-{radius * 1e3:g}mm.npz"
    )

    def _write(tmp):
        graph = source_graph(src, verbose=False)
        n = graph.shape[0]
        rows, dists = [], []
        for start in range(0, n, 1024):  # chunks: dijkstra's output is dense
            d = dijkstra(
                graph, indices=np.arange(start, min(start + 1024, n)), limit=radius
            )
            for row in d:
                idx = np.flatnonzero(np.isfinite(row))
                order = np.argsort(row[idx], kind="stable")
                rows.append(idx[order])
                dists.append(row[idx[order]])
        n_max = max(len(r) for r in rows)
        index = np.repeat(np.arange(n, dtype=np.int32)[:, None], n_max, axis=1)
        distance = np.full((n, n_max), np.inf, np.float32)
        for i, (r, d) in enumerate(zip(rows, dists)):
            index[i, : len(r)], distance[i, : len(r)] = r, d
        with open(tmp, "wb") as fid:
            np.savez(fid, index=index, distance=distance)

    logger.info(f"Geodesic neighbourhoods within {radius * 1e3:g} mm: {path}")
    cached_file(path, _write)
    with np.load(path) as data:
        return data["index"], data["distance"]


__all__ = [
    "CAP_CHANNELS",
    "CAP_MONTAGES",
    "ChannelSet",
    "DEFAULT_HEADS",
    "HeadModelFamily",
    "SUPERSET_MONTAGE",
    "geodesic_neighbourhoods",
    "make_head_model_family",
]
