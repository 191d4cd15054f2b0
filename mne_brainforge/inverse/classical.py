"""MNE-Python's classical inverses wrapped as methods with one call signature."""

import mne
import numpy as np
from mne.utils import _check_option

from ..head import cortex_normal
from ..utils import check_number

#: The classical methods :class:`MNEInverse` wraps.
CLASSICAL = ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV")
#: The sparse methods (:class:`MixedNorm`, :class:`GammaMap`).
SPARSE = ("MxNE", "gamma-MAP")


class MNEInverse:
    """A classical MNE-Python inverse as a benchmark method.

    Calling it with ``(evoked, forward, noise_cov)`` returns a signed
    (``pick_ori='normal'``) :class:`mne.SourceEstimate`. The inverse operator
    (by default loose 0.2, depth 0.8: MNE's defaults for surface source spaces) is made
    and prepared once per forward and covariance and reused. On a mixed
    forward (cortex + deep sources, ``make_fsaverage_forward(info, deep=True)``)
    the deep sources are free (``loose=dict(surface=loose, discrete=1)``) and
    the estimate is an :class:`mne.MixedSourceEstimate` of unsigned
    amplitudes (``pick_ori=None``: MNE cannot pick the normal of a volume
    source).

    Parameters
    ----------
    method : str
        ``'MNE'``, ``'dSPM'``, ``'sLORETA'``, ``'eLORETA'`` or ``'LCMV'``.
    snr : float
        Assumed amplitude SNR: ``lambda2 = 1 / snr**2`` (MNE's usual 3).
    loose : float
        Orientation looseness (0 = fixed, cortex-normal dipoles).

    See Also
    --------
    mne_brainforge.compare_inverse_methods, mne_brainforge.evaluation.run_benchmark

    Notes
    -----
    ``'LCMV'`` is :func:`mne.beamformer.make_lcmv` (``reg=0.05``, max-power
    orientation, unit-noise-gain weights) with the data covariance of the
    evoked itself; ``snr`` and ``loose`` do not apply to it.

    Examples
    --------
    >>> from mne_brainforge.inverse import MNEInverse
    >>> sloreta = MNEInverse("sLORETA")
    >>> stc = sloreta(evoked, fwd, noise_cov)  # signed, cortex-normal
    >>> records = run_benchmark({"sLORETA": sloreta, "dSPM": MNEInverse("dSPM")})
    """

    def __init__(self, method, *, snr=3.0, loose=0.2):
        _check_option("method", method, CLASSICAL)
        self.method, self.lambda2, self.loose = method, 1.0 / snr**2, loose
        self._cache = {}

    def __repr__(self):
        return f"<MNEInverse | {self.method}>"

    def __call__(self, evoked, forward, noise_cov):
        if self.method == "LCMV":
            return self._lcmv(evoked, forward, noise_cov)
        key = (
            id(forward),
            id(noise_cov),
            evoked.nave,
            self.method,
            self.lambda2,
            self.loose,
        )
        mixed = _is_mixed(forward)
        if key not in self._cache:
            fwd, loose = forward, self.loose
            if mixed:
                loose = dict(surface=self.loose, discrete=1.0)
            elif self.loose == 0:
                fwd = mne.convert_forward_solution(
                    forward, surf_ori=True, verbose=False
                )
            inv = mne.minimum_norm.make_inverse_operator(
                evoked.info, fwd, noise_cov, loose=loose, depth=0.8, verbose=False
            )
            inv = mne.minimum_norm.prepare_inverse_operator(
                inv, evoked.nave, self.lambda2, self.method, verbose=False
            )
            self._cache = {key: (inv, forward, noise_cov)}  # keep the ids alive
        inv = self._cache[key][0]
        return mne.minimum_norm.apply_inverse(
            evoked,
            inv,
            self.lambda2,
            self.method,
            prepared=True,
            pick_ori=None if self.loose == 0 or mixed else "normal",
            verbose=False,
        )

    @staticmethod
    def _lcmv(evoked, forward, noise_cov):
        data = evoked.data
        data_cov = mne.Covariance(
            data @ data.T / data.shape[1],
            evoked.ch_names,
            [],
            evoked.info["projs"],
            data.shape[1] - 1,
        )
        filters = mne.beamformer.make_lcmv(
            evoked.info,
            forward,
            data_cov,
            reg=0.05,
            noise_cov=noise_cov,
            pick_ori="max-power",
            weight_norm="unit-noise-gain",
            rank="info",
            verbose=False,
        )
        return mne.beamformer.apply_lcmv(evoked, filters, verbose=False)


def _is_mixed(forward):
    return forward["src"].kind == "mixed"


def _full_stc(stc, forward):
    """``stc`` (a few active sources) on all sources of ``forward``, zeros elsewhere."""
    vertices = [s["vertno"] for s in forward["src"]]
    offsets = np.cumsum([0] + [len(v) for v in vertices[:-1]])
    rows = np.concatenate(
        [
            offset + np.searchsorted(every, active)
            for offset, every, active in zip(offsets, vertices, stc.vertices)
        ]
    )
    data = np.zeros((sum(len(v) for v in vertices), stc.data.shape[1]))
    data[rows] = stc.data
    kind = mne.MixedSourceEstimate if _is_mixed(forward) else mne.SourceEstimate
    return kind(data, vertices, tmin=stc.tmin, tstep=stc.tstep)


class _SparseInverse:
    """Shared call convention: cortex-normal forward (converted once), full output.

    A mixed forward stays as it is: cortex-normal cortex, free deep sources
    (``loose=dict(surface=0, discrete=1)``), unsigned amplitudes.
    """

    def __init__(self, alpha, depth):
        self.alpha = check_number(alpha, "alpha", minimum=0, strict=True)
        self.depth = check_number(depth, "depth", minimum=0)
        self._fixed = {}

    def __repr__(self):
        return f"<{type(self).__name__} | alpha={self.alpha:g}>"

    def __call__(self, evoked, forward, noise_cov):
        if _is_mixed(forward):
            loose = dict(surface=0.0, discrete=1.0)
            return _full_stc(self._solve(evoked, forward, noise_cov, loose), forward)
        if id(forward) not in self._fixed:  # keep the forward alive with its id
            self._fixed = {id(forward): (forward, cortex_normal(forward))}
        fixed = self._fixed[id(forward)][1]
        stc = self._solve(evoked, fixed, noise_cov, 0.0)
        return _full_stc(stc, fixed)


class MixedNorm(_SparseInverse):
    """Iterative reweighted mixed-norm estimate (irMxNE) as a benchmark method.

    Calls :func:`mne.inverse_sparse.mixed_norm` on the cortex-normal forward
    (``loose=0``) and returns a :class:`mne.SourceEstimate` over all sources
    of the forward (zero outside the active set), like :class:`MNEInverse`.

    Parameters
    ----------
    alpha : float
        Regularisation, in percent of ``alpha_max`` (the smallest value that
        leaves no source active): 0-100, larger is sparser.
    n_mxne_iter : int
        Reweighting iterations (1 is MxNE; 5-10 is irMxNE, Strohmeier et al.,
        IEEE TMI 2016).
    depth : float
        Depth weighting exponent (MNE's sparse examples use 0.9).
    time_pca : bool
        Reduce the time courses to their data rank first (faster, same result).

    See Also
    --------
    GammaMap, MNEInverse, make_method

    Notes
    -----
    The solver is block coordinate descent with active sets (MNE's ``'auto'``),
    ``maxit=3000``, ``tol=1e-4``, debiased amplitudes: 2-4 s per call on 64
    channels (a busy 2-core machine).

    Examples
    --------
    >>> from mne_brainforge.inverse.classical import MixedNorm
    >>> mxne = MixedNorm(alpha=30)
    >>> stc = mxne(evoked, fwd, noise_cov)  # all sources, few non-zero
    """

    def __init__(self, alpha=30.0, *, n_mxne_iter=5, depth=0.9, time_pca=True):
        super().__init__(alpha, depth)
        if not self.alpha < 100:
            raise ValueError(
                f"alpha is a percentage of alpha_max below 100, got {alpha}."
            )
        self.n_mxne_iter, self.time_pca = int(n_mxne_iter), bool(time_pca)

    def _solve(self, evoked, forward, noise_cov, loose):
        return mne.inverse_sparse.mixed_norm(
            evoked,
            forward,
            noise_cov,
            alpha=self.alpha,
            loose=loose,
            depth=self.depth,
            n_mxne_iter=self.n_mxne_iter,
            time_pca=self.time_pca,
            verbose=False,
        )


class GammaMap(_SparseInverse):
    """Hierarchical Bayesian gamma-MAP estimate as a benchmark method.

    Calls :func:`mne.inverse_sparse.gamma_map` on the cortex-normal forward
    (``loose=0``) and returns a :class:`mne.SourceEstimate` over all sources
    of the forward (zero outside the sources it keeps), like
    :class:`MNEInverse`.

    Parameters
    ----------
    alpha : float
        Regularisation: the assumed variance of the whitened noise (1 if the
        noise covariance is right; larger is sparser and smoother in time).
    depth : float
        Depth weighting exponent.
    tol : float
        Convergence tolerance on the relative change of the hyperparameters.
    maxit : int
        Largest number of iterations.
    update_mode : int
        MNE's hyperparameter update rule: 1 (EM-like) or 2 (MacKay, faster).

    See Also
    --------
    MixedNorm, MNEInverse, make_method

    Notes
    -----
    Wipf and Nagarajan, NeuroImage 2009, with the data reduced to their rank
    by PCA first. On the 20484 sources of the template an iteration takes
    about half a second (64 channels, a busy 2-core machine), so the defaults
    stop after 100 MacKay iterations (``tol=1e-3``, about 75 s per call): a
    benchmark budget at which most hyperparameters are not pruned yet, so
    the estimate is focal but not sparse. MNE's defaults (``update_mode=1``,
    ``tol=1e-6``, ``maxit=10000``) take many minutes per call here.

    Examples
    --------
    >>> from mne_brainforge.inverse.classical import GammaMap
    >>> stc = GammaMap(alpha=1.0)(evoked, fwd, noise_cov)
    """

    def __init__(self, alpha=1.0, *, depth=0.9, tol=1e-3, maxit=100, update_mode=2):
        super().__init__(alpha, depth)
        self.tol, self.maxit, self.update_mode = (
            float(tol),
            int(maxit),
            int(update_mode),
        )

    def _solve(self, evoked, forward, noise_cov, loose):
        return mne.inverse_sparse.gamma_map(
            evoked,
            forward,
            noise_cov,
            alpha=self.alpha,
            loose=loose,
            depth=self.depth,
            tol=self.tol,
            maxit=self.maxit,
            update_mode=self.update_mode,
            verbose=False,
        )


def make_method(name, **kwargs):
    """A benchmark method object for any name of ``CLASSICAL + SPARSE``.

    Parameters
    ----------
    name : str
        ``'MNE'``, ``'dSPM'``, ``'sLORETA'``, ``'eLORETA'``, ``'LCMV'``,
        ``'MxNE'`` or ``'gamma-MAP'``.
    **kwargs
        Parameters of :class:`MNEInverse`, :class:`MixedNorm` or
        :class:`GammaMap`.

    Returns
    -------
    method : callable
        ``method(evoked, forward, noise_cov) -> mne.SourceEstimate``.

    Examples
    --------
    >>> from mne_brainforge.inverse.classical import make_method
    >>> methods = {name: make_method(name) for name in ("sLORETA", "MxNE")}
    """
    _check_option("name", name, CLASSICAL + SPARSE)
    if name == "MxNE":
        return MixedNorm(**kwargs)
    if name == "gamma-MAP":
        return GammaMap(**kwargs)
    return MNEInverse(name, **kwargs)
