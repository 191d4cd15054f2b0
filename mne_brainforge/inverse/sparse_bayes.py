"""Sparse Bayesian learning (Champagne) with the physics of an MNE forward model.

The model, after whitening with the noise covariance (so that sensor noise is
white with variance ``lambda``) and scaling the gain's columns for depth::

    y(t) = L x(t) + e(t),   x(t) ~ N(0, diag(gamma)),   e(t) ~ N(0, lambda I)

The source variances ``gamma`` (and optionally the noise scale ``lambda``) are
learned by maximising the marginal likelihood (type-II maximum likelihood,
"evidence") of the data ``Y = [y(1) ... y(T)]``, whose covariance is
``Sigma_y = lambda I + L diag(gamma) L^T``. Most ``gamma_i`` go to zero: the
estimate is sparse without a regularisation parameter to tune.

References
----------
Wipf D., Nagarajan S. (2009). A unified Bayesian framework for MEG/EEG source
imaging. NeuroImage 44(3), 947-966.

Wipf D. et al. (2010). Robust Bayesian estimation of the location, orientation,
and time course of multiple correlated neural sources using MEG. NeuroImage
49(1), 641-655.

Owen J. et al. (2012). Performance evaluation of the Champagne source
reconstruction algorithm on simulated and real M/EEG data. NeuroImage 60(1),
305-323.
"""

from concurrent.futures import ThreadPoolExecutor

import mne
import numpy as np
from mne.utils import logger, verbose
from scipy import sparse
from scipy.linalg import cho_solve, solve_triangular
from threadpoolctl import threadpool_limits

from ..head import geodesic_neighbourhoods
from ..utils import check_int, check_number, check_option
from ._gain import _fixed_gain

#: What :func:`apply_sparse_bayes` does with a ``prior``.
PRIOR_MODES = ("evidence", "weight", "prior", "flat")

# A prior's sources get at least this fraction of its largest variance: the
# multiplicative updates can never revive a source whose variance is exactly 0.
_PRIOR_FLOOR = 1e-3

#: Widths (mm) of the patch dictionary: geodesic Gaussian patches of 5 and
#: 10 mm standard deviation centred on every source. Single dipoles (width 0)
#: are left out on purpose: beside patches, stray dipole atoms take the
#: largest amplitudes of an extended estimate (hand checks at 20 dB: peaks
#: 20-40 mm off for 8 mm patches with them, within 8 mm without; a focal
#: source comes back as a 5 mm patch near it).
PATCH_WIDTHS = (5, 10)
#: ``patch_widths="auto"``: the single dipoles and the patch dictionary
#: (:data:`PATCH_WIDTHS`) solved apart, the evidence keeping one (measured:
#: ``benchmarks/bench_dictionary.py``).
AUTO = "auto"
#: A patch is cut at this many standard deviations (geodesic).
_PATCH_CUT = 2.5
#: Geodesic neighbourhoods the patches are cut from (m): widths up to 12 mm.
_PATCH_RADIUS = 0.03


class SparseBayesPreparation:
    """The data-independent part of the sparse Bayesian inverse.

    Made by :func:`prepare_sparse_bayes`; holds the channels, the whitener, the
    dictionary of source patterns ("atoms": dipoles and cortical patches), their
    whitened, depth-scaled gain and the source space.

    Attributes
    ----------
    ch_names : list of str
        The channels used (EEG, not bad, in the data, forward and covariance),
        in the order of the data.
    gain : ndarray, shape (n_channels, n_sources)
        Gain (V / A·m) of those channels, unprojected: cortex-normal dipoles,
        then three (x, y, z) dipoles per deep source of a mixed forward
        (:func:`~mne_brainforge.head.source_gain`); "sources" below are
        these columns.
    whitener : ndarray, shape (rank, n_channels)
        ``mne.cov.compute_whitener(noise_cov, info, picks, pca=True)``: includes
        the projectors (the average reference among them).
    proj : ndarray, shape (n_channels, n_channels)
        The projector of the info's projectors (average reference included).
    rank : int
        Rank of the whitened data (number of rows of ``whitener``).
    depth_scale : ndarray, shape (n_sources,)
        Depth scale ``s_i`` of each single source (see :func:`prepare_sparse_bayes`):
        a prior on physical variances divided by ``depth_scale**2`` is relative
        to the flat start.
    basis : scipy.sparse.csc_array, shape (n_sources, n_atoms)
        Column ``a``: the source pattern (dipole moments, relative) of atom
        ``a``; the identity when the dictionary is dipoles only.
    atom_scale : ndarray, shape (n_atoms,)
        Depth scale of each atom's whitened gain column.
    whitened_gain : ndarray, shape (rank, n_atoms)
        ``whitener @ gain @ basis * atom_scale``.
    patch_widths : tuple of float | "auto"
        The widths (mm) of the dictionary (0: dipoles), or ``"auto"``: the
        atoms of the widths ``(0, *PATCH_WIDTHS)``, dipoles and patches solved
        apart.
    dictionaries : dict of str -> ndarray of int
        The sets of atoms solved apart (one set, named ``""``, unless
        ``"auto"``); deep sources belong to every set.
    info : mne.Info
        The data's info restricted to ``ch_names``, with the projectors used.
    src : mne.SourceSpaces
        The forward's source space.
    subject : str | None
        The forward's subject.
    n_cortex : int
        Number of cortical sources (the first columns of ``gain``); the rest
        are the deep sources' x, y, z dipoles.
    """

    def __init__(
        self, ch_names, gain, whitener, proj, info, src, *, depth, limit, widths
    ):
        self.ch_names, self.gain, self.whitener, self.proj = (
            ch_names,
            gain,
            whitener,
            proj,
        )
        self.info, self.src, self.patch_widths = info, src, widths
        separate = widths == AUTO
        if separate:
            widths = (0.0, *PATCH_WIDTHS)
        self.rank = whitener.shape[0]
        self.subject = src._subject
        white = whitener @ gain
        self.depth_scale = _depth_scale(white, depth, limit)
        surfaces = mne.SourceSpaces([s for s in src if s["type"] == "surf"])
        self.n_cortex = sum(s["nuse"] for s in surfaces)
        self.basis = _patch_basis(surfaces, widths)
        if gain.shape[1] > self.n_cortex:
            # deep sources are single dipoles: patches are a cortical notion
            deep = sparse.eye_array(gain.shape[1] - self.n_cortex)
            self.basis = sparse.block_diag([self.basis, deep], format="csc")
        # the sets of atoms solved apart (each start is zero outside its set)
        n_cortical = self.n_cortex * len(widths)
        deep_atoms = np.arange(n_cortical, self.basis.shape[1])
        if separate:
            self.dictionaries = {
                "dipoles": np.r_[np.arange(self.n_cortex), deep_atoms],
                "patches": np.r_[np.arange(self.n_cortex, n_cortical), deep_atoms],
            }
        else:
            self.dictionaries = {"": np.arange(self.basis.shape[1])}
        atoms = (self.basis.T @ white.T).T  # whitener @ gain @ basis
        self.atom_scale = _depth_scale(atoms, depth, limit)
        self.whitened_gain = atoms * self.atom_scale

    def __repr__(self):
        return (
            f"<SparseBayesPreparation | {len(self.ch_names)} channels (rank "
            f"{self.rank}), {self.gain.shape[1]} sources, "
            f"{self.basis.shape[1]} atoms (widths {self.patch_widths} mm)>"
        )

    def moments(self, x):
        """Dipole moments (A·m, n_sources x n_times) of atom amplitudes ``x``."""
        return self.basis @ (x * self.atom_scale[:, None])

    def scaled_basis(self, atoms):
        """``basis[:, atoms] * atom_scale[atoms]``: atom amplitudes -> moments."""
        return self.basis[:, atoms] @ sparse.diags_array(self.atom_scale[atoms])

    @property
    def vertices(self):
        """The source-space vertices in use, one array per source space."""
        return [s["vertno"] for s in self.src]

    def to_stc(self, data, tmin, tstep):
        """A source estimate of per-source ``data`` (n_sources, n_times).

        A :class:`mne.SourceEstimate` (signed, cortex-normal) on a surface
        source space; on a mixed one a :class:`mne.MixedSourceEstimate` whose
        deep rows are the norms of the x, y, z dipoles (unsigned, as MNE's
        free-orientation estimates).
        """
        kwargs = dict(
            vertices=self.vertices, tmin=tmin, tstep=tstep, subject=self.subject
        )
        if self.n_cortex == data.shape[0]:
            return mne.SourceEstimate(data, **kwargs)
        deep = data[self.n_cortex :].reshape(-1, 3, data.shape[1])
        data = np.concatenate([data[: self.n_cortex], np.linalg.norm(deep, axis=1)])
        return mne.MixedSourceEstimate(data, **kwargs)


def _depth_scale(white_gain, depth, limit):
    """``||l_i||**-depth`` of the columns of a whitened gain (norms floored by ``limit``)."""
    norms = np.linalg.norm(white_gain, axis=0)
    if limit is not None:
        norms = np.maximum(norms, norms.max() / limit)
    if np.any(norms == 0):
        raise ValueError("The forward has sources with an all-zero gain.")
    return norms**-depth


def _check_widths(widths):
    """A tuple of distinct widths (mm), or ``"auto"``."""
    if isinstance(widths, str):
        return check_option("patch_widths", widths, (AUTO,))
    widths = tuple(
        check_number(w, "patch width", minimum=0) for w in np.atleast_1d(widths)
    )
    largest = 1e3 * _PATCH_RADIUS / _PATCH_CUT
    if not widths or max(widths) > largest or len(set(widths)) < len(widths):
        raise ValueError(
            f"patch_widths must be distinct widths (mm) from 0 (dipoles) to "
            f"{largest:g}, got {widths}."
        )
    return widths


def _patch_basis(src, widths):
    """Atoms as columns: the identity for width 0, geodesic Gaussians otherwise.

    The atom of width ``w`` centred on source ``c`` has moments
    ``exp(-d**2 / (2 w**2))`` at the sources within ``2.5 w`` geodesic
    distance ``d`` of ``c``: a smooth patch, all of one sign relative to the
    cortex normal, as a synchronously active piece of cortex is.
    """
    n_src = sum(s["nuse"] for s in src)
    if any(widths):  # read once for all widths (cached on disk)
        index, distance = geodesic_neighbourhoods(src, _PATCH_RADIUS, verbose=False)
        centre = np.broadcast_to(np.arange(n_src)[:, None], index.shape)
    blocks = []
    for width in widths:
        if width == 0:
            blocks.append(sparse.eye_array(n_src, format="csc"))
            continue
        sigma = 1e-3 * width
        weight = np.where(
            distance <= _PATCH_CUT * sigma, np.exp(-0.5 * (distance / sigma) ** 2), 0
        )
        atom = sparse.csc_array(
            (weight.ravel(), (index.ravel(), centre.ravel())), shape=(n_src, n_src)
        )
        atom.eliminate_zeros()
        blocks.append(atom)
    return sparse.hstack(blocks, format="csc")


def _has_average_reference(projs, ch_names):
    """Whether one of ``projs`` is an average reference of the EEG ``ch_names``."""
    for proj in projs:
        data = proj["data"]
        if data["nrow"] != 1 or not set(ch_names) <= set(data["col_names"]):
            continue
        vec = data["data"][0, [data["col_names"].index(c) for c in ch_names]]
        if np.ptp(vec) <= 1e-6 * np.abs(vec).max():
            return True
    return False


def _add_average_reference(info):
    """A copy of ``info`` with an (inactive) average-reference projector added."""
    info = info.copy()
    with info._unlock():
        info["custom_ref_applied"] = 0  # else MNE refuses the projector
    evoked = mne.EvokedArray(np.zeros((info["nchan"], 1)), info, verbose=False)
    evoked.set_eeg_reference("average", projection=True, verbose=False)
    return evoked.info


def _projector(info):
    """The matrix of all projectors of ``info`` (applied to the identity)."""
    info = info.copy()
    with info._unlock():
        info["projs"] = [
            mne.Projection(**{**p, "active": False}) for p in info["projs"]
        ]
    eye = mne.EvokedArray(np.eye(info["nchan"]), info, verbose=False)
    return eye.apply_proj(verbose=False).data


@verbose
def prepare_sparse_bayes(
    info,
    forward,
    noise_cov=None,
    *,
    depth=0.8,
    depth_limit=None,
    patch_widths=(0,),
    verbose=None,
):
    """Prepare the sparse Bayesian inverse for data with this ``info``.

    Parameters
    ----------
    info : mne.Info
        Info of the data (its EEG channels that are not bad, in the forward and
        in the covariance, are used).
    forward : mne.Forward
        EEG forward model on a surface source space (free or fixed orientation:
        the cortex-normal component is used), or on the mixed source space of
        ``make_fsaverage_forward(info, deep=True)`` (free orientation; the
        deep sources are estimated as three dipoles each).
    noise_cov : mne.Covariance | None
        Noise covariance of the data's channels; None uses
        :func:`mne.make_ad_hoc_cov` (0.2 µV EEG noise; the noise scale is then
        best learned, ``learn_noise=True``).
    depth : float
        Depth-weighting exponent: the whitened gain's column ``i`` is scaled by
        ``s_i = ||l_i||**-depth`` (0: none, 1: unit-norm columns). MNE's
        minimum-norm depth prior ``||l_i||**(-2 * depth)`` on the source
        *variance* is the same convention, hence the same default 0.8.
    depth_limit : float | None
        If given, column norms are floored at ``max ||l|| / depth_limit`` before
        the exponent (as MNE's ``limit``), bounding the boost of deep sources.
    patch_widths : sequence of float | "auto"
        The dictionary the solve selects from (mm, at most 12): 0 for the
        single sources (plain Champagne), a width ``w > 0`` for a geodesic
        Gaussian patch of standard deviation ``w`` centred on every source
        (see Notes); :data:`PATCH_WIDTHS` is the patch dictionary. ``"auto"``:
        single sources and :data:`PATCH_WIDTHS` as two dictionaries, solved
        apart, the solution of larger evidence kept (see Notes).
    %(verbose)s

    Returns
    -------
    prep : SparseBayesPreparation
        The channels, whitener, dictionary, gain and source space.

    See Also
    --------
    apply_sparse_bayes, sparse_bayes_solve

    Notes
    -----
    An average-reference projector is added to the projectors if the info has
    none: EEG is modelled reference-free, so data and gain are compared after
    the same average reference (data referenced to any electrode of the
    montage project to the same average-referenced data). The whitener comes
    from :func:`mne.cov.compute_whitener` with these projectors and
    ``pca=True``, so whitened data and gain have ``rank`` rows (one fewer than
    channels for the average reference) and the whitened noise is white.

    With sparse Bayesian learning the depth scaling does not change the
    objective (a scaled column is an equally scaled ``gamma_i``); it changes
    the starting point, a flat prior on the scaled sources, and with it the
    local optimum reached.

    Sparse Bayesian learning on single sources is very sparse: an extended
    patch of active cortex comes back as a few scattered dipoles. With
    patches in the dictionary (each a column ``L b_a`` of the gain, ``b_a``
    the patch's moments) the same evidence maximisation picks, for each
    active piece of cortex, the atoms that explain it best: dipoles for focal
    sources, patches for extended ones; the estimate is ``J = sum_a b_a
    x_a(t)``. The cost per iteration grows with the number of atoms (``k``
    widths: ``k`` times the sources).

    Neither dictionary suits every case: dipoles are sharper for focal sources,
    patches for extended ones. With ``"auto"`` each is solved on its own (the
    other's atoms start, and stay, at zero) and the evidence of the two
    solutions, marginal likelihoods of the same data, decides; on benchmark
    v2's 32 cases at 64 channels the mean classic localization error was 13.8
    mm against 18.1 (dipoles) and 17.7 (patches), at 16 channels 27.6 against
    29.5 and 28.2 (``benchmarks/bench_dictionary.py``).

    Examples
    --------
    >>> from mne_brainforge.inverse.sparse_bayes import prepare_sparse_bayes
    >>> prep = prepare_sparse_bayes(evoked.info, fwd)
    >>> prep.whitened_gain.shape  # (rank, n_sources)
    (63, 20484)
    """
    if not isinstance(info, mne.Info):
        raise TypeError(f"info must be an mne.Info, got {type(info).__name__}.")
    if not isinstance(forward, mne.Forward):
        raise TypeError(
            f"forward must be an mne.Forward, got {type(forward).__name__}."
        )
    depth = check_number(depth, "depth", minimum=0)
    if depth_limit is not None:
        depth_limit = check_number(depth_limit, "depth_limit", minimum=1)
    gain, fwd_names = _fixed_gain(forward)  # converted once per forward
    if noise_cov is None:
        noise_cov = mne.make_ad_hoc_cov(info, verbose=False)
    elif not isinstance(noise_cov, mne.Covariance):
        raise TypeError(
            f"noise_cov must be an mne.Covariance or None, got {type(noise_cov).__name__}."
        )
    eeg = mne.pick_types(info, meg=False, eeg=True, exclude="bads")
    in_fwd = set(fwd_names)
    picks = [p for p in eeg if info["ch_names"][p] in in_fwd]
    if not picks:
        raise ValueError(
            "The data have no good EEG channel in the forward: compute the forward "
            "for the data's montage (make_fsaverage_forward(info))."
        )
    ch_names = [info["ch_names"][p] for p in picks]
    in_cov = set(noise_cov.ch_names) - set(noise_cov["bads"])
    missing = [c for c in ch_names if c not in in_cov]
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ValueError(
            f"noise_cov lacks {len(missing)} of the {len(ch_names)} EEG channels of "
            f"the data ({shown}): compute it on the same channels (or drop them from "
            "the data)."
        )
    info = mne.pick_info(info, picks)  # a copy: the caller's info is untouched
    if not _has_average_reference(info["projs"], ch_names):
        logger.info("    Adding an average-reference projector (EEG is reference-free)")
        info = _add_average_reference(info)
    whitener, _ = mne.cov.compute_whitener(noise_cov, info, pca=True, verbose=False)
    proj = _projector(info)
    gain = gain[[fwd_names.index(c) for c in ch_names]]
    widths = _check_widths(patch_widths)
    logger.info(
        f"    Sparse Bayes: {len(ch_names)} EEG channels (whitened rank "
        f"{whitener.shape[0]}), {gain.shape[1]} sources, depth {depth}, "
        + (
            f"dipoles and patches of {PATCH_WIDTHS} mm solved apart"
            if widths == AUTO
            else f"patch widths {widths} mm"
        )
    )
    return SparseBayesPreparation(
        ch_names,
        gain,
        whitener,
        proj,
        info,
        forward["src"],
        depth=depth,
        limit=depth_limit,
        widths=widths,
    )


class SparseBayesResult:
    """Output of :func:`sparse_bayes_solve` (arrays, in the solver's units).

    Attributes
    ----------
    x : ndarray, shape (n_sources, n_times)
        Posterior mean of the sources (in the units of the columns of ``gain``).
    gamma : ndarray, shape (n_sources,)
        Learned source variances (0 where pruned).
    noise : float
        Noise variance ``lambda`` (learned or as given).
    posterior_var : ndarray, shape (n_sources,)
        Posterior variance ``gamma_i - gamma_i**2 l_i^T Sigma_y^-1 l_i``.
    log_evidence : float
        Log marginal likelihood of the data at the solution.
    n_iter : int
        Iterations run.
    parts : list of (float, SparseBayesResult) | None
        For an evidence-weighted average: its weights and solutions.
    """

    def __init__(
        self, x, gamma, noise, posterior_var, log_evidence, n_iter, parts=None
    ):
        self.x, self.gamma, self.noise = x, gamma, noise
        self.posterior_var, self.log_evidence, self.n_iter = (
            posterior_var,
            log_evidence,
            n_iter,
        )
        self.parts = parts

    def __repr__(self):
        return (
            f"<SparseBayesResult | {np.count_nonzero(self.gamma)} active sources, "
            f"log-evidence {self.log_evidence:.1f}, {self.n_iter} iterations>"
        )


def _cholesky(gain, gamma, noise):
    scaled = gain * np.sqrt(gamma)
    sigma = scaled @ scaled.T  # numpy's matmul of a matrix and its transpose: syrk
    sigma.flat[:: len(sigma) + 1] += noise
    return np.linalg.cholesky(sigma)  # lower: sigma = C C^T


def _log_evidence(chol, white_data, n_times):
    """``-T/2 (log|Sigma| + tr(Sigma^-1 C_y) + n log 2 pi)`` from ``C^-1 Y_r``."""
    n = len(chol)
    logdet = 2 * np.sum(np.log(np.diag(chol)))
    return -0.5 * n_times * (logdet + np.sum(white_data**2) + n * np.log(2 * np.pi))


def sparse_bayes_solve(
    gain,
    data,
    *,
    gamma0=None,
    n_iter=50,
    tol=1e-6,
    learn_noise=True,
    noise=1.0,
    prune=1e-5,
):
    """Champagne: sparse Bayesian learning by convex-bound updates.

    Parameters
    ----------
    gain : ndarray, shape (n_channels, n_sources)
        Whitened gain (noise covariance ``noise * I``).
    data : ndarray, shape (n_channels, n_times) | (n_batch, n_channels, n_times)
        Whitened data; a batch of windows is solved window by window.
    gamma0 : ndarray, shape (n_sources,) | None
        Prior source variances (any scale, non-negative); None is flat. It is
        rescaled so that the model covariance has the trace of the data
        covariance.
    n_iter : int
        Largest number of iterations.
    tol : float
        Stop when an iteration changes the log-evidence by less than ``tol``
        times its magnitude.
    learn_noise : bool
        Learn the noise variance ``lambda`` (else keep ``noise``).
    noise : float
        The (initial, if learned) noise variance; learned noise starts at 10 %
        of the data variance instead.
    prune : float
        Sources whose variance falls below ``prune`` times the largest are
        removed (set to 0) for the remaining iterations.

    Returns
    -------
    result : SparseBayesResult | list of SparseBayesResult
        One result, or one per window for batched ``data``.

    Notes
    -----
    The data enter only through their covariance ``C_y = Y Y^T / T``; with
    ``Sigma = lambda I + L Gamma L^T`` (Cholesky ``C``, never an inverse of
    ``n_sources`` size) each iteration costs ``O(n_channels**2 n_active)``.
    The update of each source (Wipf & Nagarajan 2009, the "convex bounding"
    rule of Champagne)::

        gamma_i <- gamma_i * sqrt(l_i^T S C_y S l_i / l_i^T S l_i),  S = Sigma^-1

    and, jointly, ``lambda <- lambda * sqrt(tr(S C_y S) / tr(S))``. It
    minimises an upper bound of ``-log evidence`` that touches it at the
    current point (log|Sigma| is concave in the variances), so every step
    increases the evidence; it converges much faster than EM and, unlike
    MacKay's fixed point, needs no posterior covariance and is guaranteed
    monotone.

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.inverse.sparse_bayes import sparse_bayes_solve
    >>> rng = np.random.default_rng(0)
    >>> gain = rng.standard_normal((32, 500))
    >>> data = gain[:, [7]] * np.sin(np.linspace(0, 6, 100)) + 0.1 * rng.standard_normal((32, 100))
    >>> int(np.argmax(sparse_bayes_solve(gain, data).gamma))
    7
    """
    gain = np.asarray(gain, np.float64)
    data = np.asarray(data, np.float64)
    if gain.ndim != 2:
        raise ValueError(f"gain must be 2D (n_channels, n_sources), got {gain.shape}.")
    if data.ndim not in (2, 3) or data.shape[-2] != gain.shape[0]:
        raise ValueError(
            f"data must be ({gain.shape[0]}, n_times) or (n_batch, {gain.shape[0]}, "
            f"n_times) to match the gain, got {data.shape}."
        )
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    if gamma0 is not None:
        gamma0 = np.asarray(gamma0, np.float64)
        if gamma0.shape != (gain.shape[1],):
            raise ValueError(
                f"The prior must have one value per source ({gain.shape[1]}), got "
                f"shape {gamma0.shape}."
            )
        if not np.all(np.isfinite(gamma0)) or np.any(gamma0 < 0) or not gamma0.any():
            raise ValueError(
                "The prior must be finite, non-negative and not all zero (it is a "
                "variance per source)."
            )
    kwargs = dict(
        gamma0=gamma0,
        n_iter=n_iter,
        tol=tol,
        learn_noise=learn_noise,
        noise=noise,
        prune=prune,
    )
    # One BLAS thread: the matrices are n_channels thin, and OpenBLAS's threads
    # made the solve 3.7x slower on the 2-core machine, idle or not (measured).
    with threadpool_limits(1, user_api="blas"):
        if data.ndim == 3:
            return [_solve(gain, d, **kwargs) for d in data]
        return _solve(gain, data, **kwargs)


def _solve(gain, data, *, gamma0, n_iter, tol, learn_noise, noise, prune):
    n_ch, n_times = data.shape
    cov = data @ data.T / n_times
    eig, vec = np.linalg.eigh(cov)
    keep = eig > eig.max() * 1e-12
    if not keep.any():
        raise ValueError("The (whitened) data are all zero.")
    reduced = vec[:, keep] * np.sqrt(eig[keep])  # Y_r Y_r^T = C_y
    total = np.trace(cov)
    gamma = np.ones(gain.shape[1]) if gamma0 is None else gamma0.copy()
    if learn_noise:
        noise = 0.1 * total / n_ch
    signal = max(total - noise * n_ch, 0.1 * total)  # trace left to the sources
    gamma *= signal / np.sum(gamma * np.sum(gain**2, axis=0))
    active = np.flatnonzero(gamma)
    lg = gain[:, active]
    cost, n_done = np.inf, 0
    while n_done < n_iter:
        chol = _cholesky(lg, gamma[active], noise)
        white_data = solve_triangular(chol, reduced, lower=True)  # C^-1 Y_r
        new_cost = -_log_evidence(chol, white_data, n_times)
        if abs(cost - new_cost) < tol * abs(new_cost):
            break
        cost = new_cost
        # with S = C^-T C^-1: l^T S l = |C^-1 l|^2, l^T S C_y S l = |Y_r^T C^-T C^-1 l|^2
        inv_chol = solve_triangular(chol, np.eye(n_ch), lower=True)
        white_gain = inv_chol @ lg  # C^-1 L (a product: 3x faster than trsm here)
        z = np.einsum("ij,ij->j", white_gain, white_gain)  # l_i^T S l_i
        wq = white_data.T @ white_gain
        q = np.einsum("ij,ij->j", wq, wq)  # l_i^T S C_y S l_i
        if learn_noise:
            s_y = inv_chol.T @ white_data  # S Y_r
            noise *= np.sqrt(np.sum(s_y**2) / np.sum(inv_chol**2))  # tr(S) = |C^-1|^2
        gamma[active] *= np.sqrt(q / z)
        kept = gamma[active] >= prune * gamma[active].max()
        if not kept.all():  # a copy of the gain's columns only when some are pruned
            gamma[active[~kept]] = 0.0
            active, lg = active[kept], lg[:, kept]
        n_done += 1
    # The posterior at the final variances (lg holds the active columns already)
    chol = _cholesky(lg, gamma[active], noise)
    s_l = cho_solve((chol, True), lg)  # S L
    x = np.zeros((gain.shape[1], n_times))
    x[active] = gamma[active, None] * (s_l.T @ data)
    posterior_var = gamma.copy()
    posterior_var[active] -= gamma[active] ** 2 * np.sum(lg * s_l, axis=0)
    np.maximum(posterior_var, 0.0, out=posterior_var)  # rounding
    white_data = solve_triangular(chol, reduced, lower=True)
    evidence = _log_evidence(chol, white_data, n_times)
    return SparseBayesResult(x, gamma, float(noise), posterior_var, evidence, n_done)


def _prior_gamma(prior, prep):
    """Prior source variances (physical) as starting variances of the scaled atoms.

    Relative to the flat start (``prior / depth_scale**2``) and averaged over
    each atom's pattern, so that a prior proportional to ``depth_scale**2``
    is the flat start.
    """
    prior = np.asarray(prior, np.float64)
    n_src = prep.gain.shape[1]
    if prior.shape != (n_src,):
        raise ValueError(
            f"prior must have one value per source of the forward ({n_src}), got "
            f"shape {prior.shape}."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or not prior.any():
        raise ValueError(
            "prior must be finite, non-negative and not all zero: it is a variance "
            "per source (e.g. the squared amplitude of another estimate)."
        )
    weights = prep.basis.sum(axis=0)
    return (prep.basis.T @ (prior / prep.depth_scale**2)) / weights


def _start(atoms, n_atoms, prior_gamma=None):
    """Starting variances on one dictionary: flat, or the prior floored; 0 elsewhere.

    None (the flat start on every atom) when the dictionary is all atoms.
    """
    if prior_gamma is None and len(atoms) == n_atoms:
        return None
    gamma = np.zeros(n_atoms)
    if prior_gamma is None:
        gamma[atoms] = 1.0
    else:
        part = prior_gamma[atoms]
        gamma[atoms] = part + _PRIOR_FLOOR * part.max()
    return gamma


def _source_variance(prep, gain, result):
    """Posterior variance of every source's moment, ``diag(M Sigma_x M^T)`` (A·m)².

    ``M``: atom amplitudes -> moments; ``Sigma_x = Gamma - Gamma L^T S L
    Gamma`` the atoms' posterior covariance (``S = Sigma_y^-1``), never formed:
    its diagonal part and a (sources x channels) product suffice. For an
    evidence-weighted result, the mixture's variance.
    """
    if result.parts is not None:
        mean = prep.moments(result.x)
        return sum(
            w
            * (
                _source_variance(prep, gain, part)
                + np.mean((prep.moments(part.x) - mean) ** 2, axis=1)
            )
            for w, part in result.parts
        )
    active = np.flatnonzero(result.gamma)
    m = prep.scaled_basis(active)
    gamma = result.gamma[active]
    lg = gain[:, active]
    chol = _cholesky(lg, gamma, result.noise)
    z = solve_triangular(chol, (m @ (gamma[:, None] * lg.T)).T, lower=True)
    return np.maximum(m.power(2) @ gamma - np.sum(z**2, axis=0), 0.0)


def _solve_with_prior(gain, data, prior_gamma, prior_mode, dictionaries, **kwargs):
    """Solve from the flat prior and/or ``prior_gamma`` on each dictionary; keep or
    weigh the solutions by their evidence.

    ``dictionaries`` (name -> atoms, see :class:`SparseBayesPreparation`): each
    is solved apart, its starting variances zero outside it.
    """
    n_atoms = gain.shape[1]
    if prior_gamma is None or prior_mode == "flat":
        kinds = ["flat"]
    elif prior_mode == "prior":
        kinds = ["prior"]
    else:  # "evidence", "weight"
        kinds = ["prior", "flat"]
    starts = {
        " ".join(filter(None, (kind, name))): _start(
            atoms, n_atoms, prior_gamma if kind == "prior" else None
        )
        for name, atoms in dictionaries.items()
        for kind in kinds
    }
    if len(starts) == 1:
        return sparse_bayes_solve(gain, data, gamma0=starts.popitem()[1], **kwargs)
    # the solves side by side: numpy leaves the GIL in the products; the BLAS
    # limit is process-wide, so it is held here, around the threads
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(2) as pool:
        solved = pool.map(
            lambda gamma0: sparse_bayes_solve(gain, data, gamma0=gamma0, **kwargs),
            starts.values(),
        )
        results = dict(zip(starts, solved))
    evidence = {name: r.log_evidence for name, r in results.items()}
    listed = ", ".join(f"{name} {ev:.2f}" for name, ev in evidence.items())
    if prior_mode != "weight":
        best = max(evidence, key=evidence.get)
        logger.info(f"    Evidence: the {best} start won (log-evidence: {listed})")
        return results[best]
    # Bayesian model average, weights proportional to the evidences
    ev = np.array(list(evidence.values()))
    weights = np.exp(ev - ev.max())
    weights /= weights.sum()
    logger.info(
        "    Evidence weights: "
        + ", ".join(f"{n} {w:.3g}" for n, w in zip(results, weights))
        + f" (log-evidence: {listed})"
    )
    parts = list(zip(weights, results.values()))
    x = sum(w * r.x for w, r in parts)
    # variance of the mixture: within-model variances plus the spread of the means
    posterior_var = sum(
        w * (r.posterior_var + np.mean((r.x - x) ** 2, axis=1)) for w, r in parts
    )
    kept = weights > 0
    return SparseBayesResult(
        x,
        sum(w * r.gamma for w, r in parts),
        float(sum(w * r.noise for w, r in parts)),
        posterior_var,
        float(np.logaddexp.reduce(ev[kept] + np.log(weights[kept]))),
        sum(r.n_iter for r in results.values()),
        parts=parts,
    )


def _check_evoked(evoked):
    if not isinstance(evoked, mne.Evoked):
        raise TypeError(f"evoked must be an mne.Evoked, got {type(evoked).__name__}.")
    return evoked


def _apply(
    prep,
    evoked,
    *,
    prior,
    prior_mode,
    n_iter,
    learn_noise,
    return_residual,
    return_uncertainty,
):
    check_option("prior_mode", prior_mode, PRIOR_MODES)
    prior_gamma = None if prior is None else _prior_gamma(prior, prep)
    missing = set(prep.ch_names) - set(evoked.ch_names)
    if missing:
        raise ValueError(
            f"The evoked lacks {len(missing)} channels of the preparation "
            f"({', '.join(sorted(missing)[:8])}): prepare it with the evoked's info."
        )
    data = evoked.data[[evoked.ch_names.index(c) for c in prep.ch_names]]
    scale = np.sqrt(evoked.nave)  # the noise of an average of nave trials
    white_data = scale * (prep.whitener @ data)
    white_gain = scale * prep.whitened_gain
    result = _solve_with_prior(
        white_gain,
        white_data,
        prior_gamma,
        prior_mode,
        prep.dictionaries,
        n_iter=n_iter,
        learn_noise=learn_noise,
    )
    active = np.flatnonzero(result.gamma)  # the other rows of x are exactly 0
    fit = white_gain[:, active] @ result.x[active]
    gof = 100 * (1 - np.sum((white_data - fit) ** 2) / np.sum(white_data**2))
    logger.info(
        f"    Sparse Bayes: {np.count_nonzero(result.gamma)} active sources, "
        f"{result.n_iter} iterations, explained variance (whitened) {gof:.1f} %, "
        f"log-evidence {result.log_evidence:.2f}"
    )
    moments = prep.moments(result.x)  # A·m
    out = (prep.to_stc(moments, evoked.times[0], 1.0 / evoked.info["sfreq"]),)
    if return_residual:
        # P (data - G J); projectors are idempotent, so data whose projectors are
        # already applied (or will be again) give the same residual
        residual = evoked.copy().pick(prep.ch_names)
        residual.data = prep.proj @ (data - prep.gain @ moments)
        out += (residual,)
    if return_uncertainty:
        # a deep source's: the root of its dipoles' summed variances
        std = np.sqrt(_source_variance(prep, white_gain, result))
        out += (prep.to_stc(std[:, None], evoked.times[0], 1.0),)
    return out[0] if len(out) == 1 else out


#: Default largest number of iterations (measured: see benchmarks/bench_sparse_bayes.py).
N_ITER = 50


@verbose
def apply_sparse_bayes(
    evoked,
    forward,
    noise_cov=None,
    *,
    prior=None,
    prior_mode="evidence",
    n_iter=N_ITER,
    depth=0.8,
    patch_widths=(0,),
    learn_noise=True,
    return_residual=False,
    return_uncertainty=False,
    verbose=None,
):
    """Sparse Bayesian (Champagne) source estimate of an evoked response.

    Parameters
    ----------
    evoked : mne.Evoked
        The EEG data (V).
    forward : mne.Forward
        EEG forward model on a surface source space; dipoles are cortex-normal.
    noise_cov : mne.Covariance | None
        Noise covariance; None is :func:`mne.make_ad_hoc_cov` (its scale is
        then learned, see ``learn_noise``).
    prior : ndarray, shape (n_sources,) | None
        Prior source variances (any scale, non-negative; e.g. the squared
        amplitude of another estimate), in forward order.
    prior_mode : str
        With a ``prior``: ``'evidence'`` solves from the prior and from a flat
        prior and keeps the one of larger evidence; ``'weight'`` averages both
        with weights proportional to their evidences; ``'prior'`` and
        ``'flat'`` solve from one only.
    n_iter : int
        Largest number of iterations of each solve.
    depth : float
        Depth-weighting exponent of the flat prior (see
        :func:`prepare_sparse_bayes`).
    patch_widths : sequence of float | "auto"
        The dictionary (mm): ``(0,)`` single sources (classical Champagne);
        :data:`PATCH_WIDTHS` geodesic patches; ``"auto"`` both, solved apart,
        the larger evidence kept (see :func:`prepare_sparse_bayes`).
    learn_noise : bool
        Learn the scale of the noise covariance from the data (advised unless
        the covariance was estimated on the same recording).
    return_residual : bool
        Also return the residual.
    return_uncertainty : bool
        Also return the posterior standard deviations.
    %(verbose)s

    Returns
    -------
    stc : mne.SourceEstimate
        Posterior mean dipole moments (A·m), cortex-normal, on the forward's
        sources.
    residual : mne.Evoked
        Only with ``return_residual``: ``P (data - G J)`` on the channels used,
        unwhitened, ``P`` the projectors applied (average reference included).
    std : mne.SourceEstimate
        Only with ``return_uncertainty``: the posterior standard deviation
        (A·m) of each source, one time point.

    See Also
    --------
    prepare_sparse_bayes, sparse_bayes_solve, SparseBayes

    Notes
    -----
    See :func:`sparse_bayes_solve` for the algorithm and
    :func:`prepare_sparse_bayes` for whitening, reference and depth. The log
    (``verbose=True``) reports the explained variance of the whitened data
    (the goodness of fit) and, with a prior, which start won.

    Examples
    --------
    >>> from mne_brainforge.inverse.sparse_bayes import apply_sparse_bayes
    >>> stc = apply_sparse_bayes(evoked, fwd, noise_cov)
    >>> stc, residual, std = apply_sparse_bayes(
    ...     evoked, fwd, noise_cov, return_residual=True, return_uncertainty=True
    ... )
    """
    prep = prepare_sparse_bayes(
        _check_evoked(evoked).info,
        forward,
        noise_cov,
        depth=depth,
        patch_widths=patch_widths,
    )
    return _apply(
        prep,
        evoked,
        prior=prior,
        prior_mode=prior_mode,
        n_iter=n_iter,
        learn_noise=learn_noise,
        return_residual=return_residual,
        return_uncertainty=return_uncertainty,
    )


class SparseBayes:
    """Sparse Bayesian learning (Champagne) as a benchmark method.

    Calling it with ``(evoked, forward, noise_cov)`` returns the
    :class:`mne.SourceEstimate` of :func:`apply_sparse_bayes`; the preparation
    (whitener, gain, depth) is made once per forward, covariance and channel
    set and reused.

    Parameters
    ----------
    n_iter : int
        Largest number of iterations.
    depth : float
        Depth-weighting exponent.
    prior_mode : str
        What a ``prior`` passed to the call does (see :func:`apply_sparse_bayes`).
    learn_noise : bool
        Learn the noise scale.
    patch_widths : sequence of float | "auto"
        The dictionary (mm, or ``"auto"``; see :func:`prepare_sparse_bayes`).

    See Also
    --------
    apply_sparse_bayes, mne_brainforge.inverse.MNEInverse

    Examples
    --------
    >>> from mne_brainforge.inverse.sparse_bayes import SparseBayes
    >>> champagne = SparseBayes()
    >>> stc = champagne(evoked, fwd, noise_cov)
    >>> records = run_benchmark({"Champagne": champagne, "sLORETA": MNEInverse("sLORETA")})
    """

    def __init__(
        self,
        n_iter=N_ITER,
        *,
        depth=0.8,
        prior_mode="evidence",
        learn_noise=True,
        patch_widths=(0,),
    ):
        self.n_iter = check_int(n_iter, "n_iter", minimum=1)
        self.depth = check_number(depth, "depth", minimum=0)
        self.patch_widths = _check_widths(patch_widths)
        self.prior_mode = check_option("prior_mode", prior_mode, PRIOR_MODES)
        self.learn_noise = bool(learn_noise)
        self._cache = {}

    def __repr__(self):
        return (
            f"<SparseBayes | n_iter {self.n_iter}, depth {self.depth}, patch widths "
            f"{self.patch_widths} mm>"
        )

    def prepare(self, info, forward, noise_cov=None):
        """The (cached) :class:`SparseBayesPreparation` for this info, forward, covariance.

        Parameters
        ----------
        info : mne.Info
            Info of the data.
        forward : mne.Forward
            The forward model.
        noise_cov : mne.Covariance | None
            The noise covariance.

        Returns
        -------
        prep : SparseBayesPreparation
            The preparation.

        Examples
        --------
        >>> prep = SparseBayes().prepare(evoked.info, fwd, noise_cov)
        """
        key = (
            id(forward),
            id(noise_cov),
            tuple(info["ch_names"]),
            tuple(info["bads"]),
            tuple(p["desc"] for p in info["projs"]),
        )
        if key not in self._cache:
            prep = prepare_sparse_bayes(
                info,
                forward,
                noise_cov,
                depth=self.depth,
                patch_widths=self.patch_widths,
                verbose=False,
            )
            self._cache = {key: (prep, forward, noise_cov)}  # keep the ids alive
        return self._cache[key][0]

    def __call__(self, evoked, forward, noise_cov=None, *, prior=None):
        return _apply(
            self.prepare(_check_evoked(evoked).info, forward, noise_cov),
            evoked,
            prior=prior,
            prior_mode=self.prior_mode,
            n_iter=self.n_iter,
            learn_noise=self.learn_noise,
            return_residual=False,
            return_uncertainty=False,
        )


def posterior_kernel(prep, result):
    """The linear operator of a solution: data (channels) -> dipole moments (A·m).

    Given the learned variances, the posterior mean is linear in the data:
    ``J = D Gamma L^T Sigma_y^-1 W y``, with ``W`` the whitener, ``L`` the
    whitened, depth-scaled gain and ``D`` the depth scale; long data can be
    given as this kernel (the delayed ``(kernel, data)`` form of
    :class:`mne.SourceEstimate`) instead of a (sources x samples) array.

    Parameters
    ----------
    prep : SparseBayesPreparation
        The preparation the solution was made with.
    result : SparseBayesResult
        A solution (learned ``gamma`` and ``noise``) on ``prep.whitened_gain``.

    Returns
    -------
    kernel : ndarray, shape (n_sources, n_channels)
        Applies to the (unwhitened, unprojected) data of ``prep.ch_names``.

    Notes
    -----
    With patches in the dictionary, ``D`` above includes the atoms'
    patterns (atom amplitudes -> moments).
    """
    active = np.flatnonzero(result.gamma)
    lg = prep.whitened_gain[:, active]
    chol = _cholesky(lg, result.gamma[active], result.noise)
    s_l = cho_solve((chol, True), lg)  # Sigma^-1 L
    return prep.scaled_basis(active) @ (
        (result.gamma[active, None] * s_l.T) @ prep.whitener
    )


def solve_covariance(prep, cov, n_samples, *, prior=None, prior_mode="evidence", **kw):
    """Solve for the source variances from a whitened data covariance alone.

    The updates and the evidence depend on the data only through their
    covariance, so long data can be accumulated chunk by chunk (bounded memory)
    and solved once; the sources are then assumed stationary over the data.

    Parameters
    ----------
    prep : SparseBayesPreparation
        The preparation.
    cov : ndarray, shape (rank, rank)
        ``W Y Y^T W^T / n_samples`` of the data ``Y`` (whitened).
    n_samples : int
        Samples it was computed from.
    prior : ndarray, shape (n_sources,) | None
        Prior source variances (as in :func:`apply_sparse_bayes`).
    prior_mode : str
        See :func:`apply_sparse_bayes`.
    **kw
        ``n_iter``, ``learn_noise`` of :func:`sparse_bayes_solve`.

    Returns
    -------
    result : SparseBayesResult
        Its ``x`` is meaningless (a square root of the covariance was solved):
        use :func:`posterior_kernel`. The evidence is scaled to ``n_samples``
        only approximately (the solves compare on the same footing).
    """
    check_option("prior_mode", prior_mode, PRIOR_MODES)
    eig, vec = np.linalg.eigh(cov)
    keep = eig > max(eig.max(), 0) * 1e-12
    if not keep.any():
        raise ValueError("The (whitened) data are all zero.")
    root = vec[:, keep] * np.sqrt(eig[keep] * keep.sum())  # root root^T / m = cov
    prior_gamma = None if prior is None else _prior_gamma(prior, prep)
    return _solve_with_prior(
        prep.whitened_gain, root, prior_gamma, prior_mode, prep.dictionaries, **kw
    )
