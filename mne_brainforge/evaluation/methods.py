"""The methods an evaluation compares, all with one call signature."""

from ..inverse import (
    CLASSICAL,
    PATCH_WIDTHS,
    SPARSE,
    SparseBayes,
    apply_brainforge_inverse,
    make_method,
)
from ..utils import check_option

#: Every method of the benchmark, BrainForge first.
METHODS = (
    "BrainForge",
    "BrainForge (patches)",
    "sparse Bayes (patches)",
    "sparse Bayes",
    *SPARSE,
    *CLASSICAL,
)


class BrainForgeMethod:
    """BrainForge (network prior + sparse Bayesian solve) as a benchmark method.

    Parameters
    ----------
    model : BrainForgeModel | str | path-like | None
        The network (see :func:`~mne_brainforge.apply_brainforge_inverse`);
        loaded once.
    **kwargs
        Options of :func:`~mne_brainforge.apply_brainforge_inverse`
        (``prior_mode``, ``n_iter``, ``depth``, ``patch_widths``).
    """

    def __init__(self, model=None, **kwargs):
        from ..inverse._core import _load_model

        self.model, self.kwargs = _load_model(model), kwargs

    def __repr__(self):
        return f"<BrainForgeMethod | {self.model}>"

    def __call__(self, evoked, forward, noise_cov):
        return apply_brainforge_inverse(
            evoked, forward, self.model, noise_cov, verbose=False, **self.kwargs
        )


def make_methods(names=METHODS, *, model=None):
    """Method objects for names of :data:`METHODS`.

    Parameters
    ----------
    names : sequence of str
        Which methods (see :data:`METHODS`).
    model : BrainForgeModel | str | path-like | None
        The network of ``'BrainForge'`` (None: the pretrained model).

    Returns
    -------
    methods : dict of str -> callable
        ``method(evoked, forward, noise_cov) -> mne.SourceEstimate``.

    Examples
    --------
    >>> from mne_brainforge.evaluation.methods import make_methods
    >>> methods = make_methods(["sLORETA", "MxNE", "sparse Bayes"])
    """
    methods = {}
    for name in names:
        check_option("method", name, METHODS)
        if name == "BrainForge":
            methods[name] = BrainForgeMethod(model)
        elif name == "BrainForge (patches)":  # the network's prior on the patches
            methods[name] = BrainForgeMethod(model, patch_widths=PATCH_WIDTHS)
        elif name == "sparse Bayes":
            methods[name] = SparseBayes()  # classical Champagne: single dipoles
        elif name == "sparse Bayes (patches)":
            # the dictionary of geodesic patches (extended sources), flat prior
            methods[name] = SparseBayes(patch_widths=PATCH_WIDTHS)
        else:
            methods[name] = make_method(name)
    return methods
