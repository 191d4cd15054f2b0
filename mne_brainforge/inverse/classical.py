"""MNE-Python's classical inverses wrapped as methods with one call signature."""

import mne
from mne.utils import _check_option

#: The classical methods :class:`MNEInverse` wraps.
CLASSICAL = ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV")


class MNEInverse:
    """A classical MNE-Python inverse as a benchmark method.

    Calling it with ``(evoked, forward, noise_cov)`` returns a signed
    (``pick_ori='normal'``) :class:`mne.SourceEstimate`. The inverse operator
    (by default loose 0.2, depth 0.8: MNE's defaults for surface source spaces) is made
    and prepared once per forward and covariance and reused.

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
        if key not in self._cache:
            fwd = forward
            if self.loose == 0:
                fwd = mne.convert_forward_solution(
                    forward, surf_ori=True, verbose=False
                )
            inv = mne.minimum_norm.make_inverse_operator(
                evoked.info, fwd, noise_cov, loose=self.loose, depth=0.8, verbose=False
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
            pick_ori=None if self.loose == 0 else "normal",
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
