"""Shared docstring entries: one text per parameter, filled in with ``fill_doc``.

Starts from MNE's own docdict (``verbose`` etc.) like mne-icalabel and
mne-connectivity do, and adds mne-brainforge's entries, so a parameter that
several functions share is written once.
"""

from mne.utils.docs import docdict as _mne_docdict

docdict = dict(_mne_docdict)

docdict["forward_brainforge"] = """
forward : mne.Forward
    The forward solution of the head the data were recorded on (e.g. from
    :func:`mne_brainforge.make_fsaverage_forward`). Free or loose orientations
    are converted to cortex-normal dipoles."""
docdict["noise_cov_brainforge"] = """
noise_cov : mne.Covariance | None
    The noise covariance used to whiten data and gain. ``None`` uses an ad-hoc
    diagonal covariance (:func:`mne.make_ad_hoc_cov`), as MNE does."""
docdict["subjects_dir_brainforge"] = """
subjects_dir : path-like | None
    The folder holding the ``fsaverage`` template (``None``: the cached template,
    built offline on first use)."""
docdict["stc_estimate"] = """
stc : mne.SourceEstimate
    The estimate, on the truth's vertices."""
docdict["truth"] = """
truth : GroundTruth
    The simulated sources."""
docdict["src_positions"] = """
src : mne.SourceSpaces
    Source space of both (for positions)."""
docdict["records"] = """
records : list of dict
    From :func:`~mne_brainforge.evaluation.runner.run_evaluation`."""
docdict["seed"] = """
seed : None | int | numpy.random.Generator
    Seed of the random draws (the same seed gives the same result)."""


def fill_doc(func):
    """Fill a docstring's ``%(name)s`` entries from mne-brainforge's docdict.

    Entries are re-indented to the docstring's own indent, as MNE's ``fill_doc``
    does for MNE's docdict.
    """
    doc = func.__doc__
    if not doc:
        return func
    lines = doc.splitlines()
    indent = " " * min(
        (len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()),
        default=0,
    )
    entries = {
        key: value.strip("\n").replace("\n", "\n" + indent)
        for key, value in docdict.items()
    }
    try:
        func.__doc__ = doc % entries
    except (KeyError, TypeError, ValueError) as err:
        raise RuntimeError(f"Error documenting {func.__qualname__}: {err!r}") from None
    return func
