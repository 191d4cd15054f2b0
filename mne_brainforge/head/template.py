"""The fsaverage template head, built offline and cached."""

import json
import shutil
import tempfile
import time
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
from mne.io.constants import FIFF
from mne.utils import logger, verbose
from tqdm.auto import tqdm

from .._version import __version__
from ..utils import build_cached_dir, cached_file, get_data_path
from . import _geometry as geo

SUBJECT = "fsaverage"
#: Brain, skull, scalp conductivities (S/m), MNE's defaults.
DEFAULT_CONDUCTIVITY = (0.3, 0.006, 0.3)
#: Largest skull thickness (m) of the outer skull derivation (see make_outer_skull).
DEFAULT_SKULL_THICKNESS = 7e-3
#: Bumped whenever the build below changes what it writes: caches rebuild.
RECIPE = {"name": "mne-brainforge fsaverage template", "revision": 1}

# BEM surface ids of the brain, skull and scalp layers, in conductivity order
_LAYER_IDS = (
    FIFF.FIFFV_BEM_SURF_ID_BRAIN,
    FIFF.FIFFV_BEM_SURF_ID_SKULL,
    FIFF.FIFFV_BEM_SURF_ID_HEAD,
)
_BEM_SURF = "fsaverage-ico4-bem.fif"
_SRC = "fsaverage-ico5-src.fif"
_TRANS = "fsaverage-trans.fif"
_GEOMETRY = "geometry.json"


def _default_subjects_dir():
    return get_data_path() / "subjects"


def _bem_solution_name(conductivity, skull_thickness=None):
    tag = "-".join(f"{c:g}" for c in conductivity)
    if skull_thickness is not None and skull_thickness != DEFAULT_SKULL_THICKNESS:
        tag += f"-skull{skull_thickness * 1e3:g}mm"
    return f"fsaverage-ico4-bem-sol-{tag}.fif"


#: Stages of the template build (progress bar steps)
_BUILD_STAGES = 4


def _stage(bar, message):
    """Start a stage of the template build: log it, count it on the bar."""
    logger.info(message)
    bar.set_description(f"fsaverage template: {message.rstrip(' .')}", refresh=False)
    bar.update()


def _build(subject_dir):
    """Write the whole template subject into ``subject_dir`` (see fetch_fsaverage)."""
    t0 = time.perf_counter()
    subjects_dir = subject_dir.parent
    surf_dir, bem_dir = subject_dir / "surf", subject_dir / "bem"
    surf_dir.mkdir()
    bem_dir.mkdir()
    logger.info(f"Building the offline fsaverage template in {subject_dir} (first use)")
    # a bar whatever the log level: the build is minutes long and often started
    # by another function (make_fsaverage_forward) with logging off
    bar = tqdm(total=_BUILD_STAGES, desc="fsaverage template", unit="stage")

    _stage(bar, "Writing fsaverage5 cortex surfaces (nilearn) ...")
    geo.write_cortex_surfaces(surf_dir)
    for name in (_TRANS, "fsaverage-fiducials.fif", "fsaverage-head.fif"):
        shutil.copyfile(geo.mne_fsaverage_data_dir() / name, bem_dir / name)

    _stage(bar, "Deriving the outer skull ...")
    inner_rr, tris = geo.inner_skull_ico4()
    scalp = geo.read_shipped_bem_surface("fsaverage-head.fif")
    outer_rr = geo.make_outer_skull(
        inner_rr,
        tris,
        scalp["rr"],
        scalp["tris"],
        max_thickness=DEFAULT_SKULL_THICKNESS,
    )
    for name, rr, tri in (
        ("inner_skull", inner_rr, tris),
        ("outer_skull", outer_rr, tris),
        ("outer_skin", scalp["rr"], scalp["tris"]),
    ):
        nib.freesurfer.write_geometry(bem_dir / f"{name}.surf", rr * 1e3, tri)

    skull = geo.surface_distance(outer_rr, inner_rr, tris)
    skin = geo.surface_distance(outer_rr, scalp["rr"], scalp["tris"])
    stats = {
        "n_vertices": {
            "cortex_per_hemi": geo.N_VERTICES_ICO5,
            "inner_skull": len(inner_rr),
            "outer_skull": len(outer_rr),
            "outer_skin": len(scalp["rr"]),
        },
        "skull_thickness_mm": _percentiles(skull),
        "scalp_thickness_mm": _percentiles(skin),
    }

    _stage(bar, "Making the 3-layer BEM model and solution (about a minute) ...")
    model = mne.make_bem_model(
        SUBJECT,
        ico=None,
        conductivity=DEFAULT_CONDUCTIVITY,
        subjects_dir=subjects_dir,
        verbose=False,
    )
    mne.write_bem_surfaces(bem_dir / _BEM_SURF, model)
    solution = mne.make_bem_solution(model, verbose=False)
    mne.write_bem_solution(bem_dir / _bem_solution_name(DEFAULT_CONDUCTIVITY), solution)

    _stage(bar, "Setting up the ico5 source space ...")
    src = mne.setup_source_space(
        SUBJECT,
        spacing="ico5",
        add_dist=False,
        subjects_dir=subjects_dir,
        verbose=False,
    )
    mne.write_source_spaces(bem_dir / _SRC, src, verbose=False)
    bar.close()

    stats["build_seconds"] = round(time.perf_counter() - t0, 1)
    stats["mne_brainforge_version"] = __version__
    (bem_dir / _GEOMETRY).write_text(json.dumps(stats, indent=1))


def _percentiles(dist_m):
    values = np.percentile(dist_m * 1e3, [0, 5, 50, 95, 100])
    return dict(
        zip(("min", "p5", "median", "p95", "max"), np.round(values, 2).tolist())
    )


@verbose
def fetch_fsaverage(subjects_dir=None, *, verbose=None):
    """Build (once) and return the offline fsaverage template subject.

    Unlike :func:`mne.datasets.fetch_fsaverage`, nothing is downloaded: the
    subject is assembled from files that installed packages ship (nilearn's
    fsaverage5 cortex, MNE-Python's fsaverage inner skull, scalp, trans and
    fiducials) and an outer skull derived from them. The first call takes about
    a minute or two; later calls verify the cache and return at once. The build
    is safe against concurrent processes and interrupted builds.

    The subject is named ``fsaverage`` and its cortex has the 10242 ico5
    vertices per hemisphere of the real fsaverage, so estimates on it plot,
    morph and label like ordinary fsaverage estimates.

    Parameters
    ----------
    subjects_dir : path-like | None
        Where to put the ``fsaverage`` subject. If None (default),
        ``<data path>/subjects`` where the data path is the config key or
        environment variable ``MNE_BRAINFORGE_DATA``, else
        ``<MNE_DATA>/MNE-brainforge-data`` (``~/mne_data`` if ``MNE_DATA`` is
        unset). An existing ``fsaverage`` there that mne-brainforge did not build
        (e.g. MNE's own download) is never modified: an error is raised instead.
    %(verbose)s

    Returns
    -------
    subjects_dir : Path
        The folder containing ``fsaverage``: pass it as ``subjects_dir`` to MNE.

    Notes
    -----
    Contents of ``fsaverage``: ``surf/{lh,rh}.{white,pial,inflated,sphere,
    sphere.reg,curv}``; ``bem/`` with ``inner_skull.surf``, ``outer_skull.surf``,
    ``outer_skin.surf``, the 3-layer ico4 BEM model and its solution for
    conductivities (0.3, 0.006, 0.3) S/m, the ico5 source space, the trans,
    fiducials and head surface, and ``geometry.json`` (layer thicknesses).

    See the tutorial :ref:`sphx_glr_auto_tutorials_00_quickstart.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> subjects_dir = bf.datasets.fetch_fsaverage()
    >>> (subjects_dir / "fsaverage" / "bem").is_dir()
    True
    >>> brain = stc.plot(subject="fsaverage", subjects_dir=subjects_dir)
    """
    subjects_dir = Path(subjects_dir) if subjects_dir else _default_subjects_dir()
    subjects_dir = subjects_dir.expanduser().resolve()
    build_cached_dir(subjects_dir / SUBJECT, RECIPE, _build)
    return subjects_dir


def _bem_dir(subjects_dir):
    return fetch_fsaverage(subjects_dir, verbose=False) / SUBJECT / "bem"


@verbose
def read_fsaverage_source_space(subjects_dir=None, *, verbose=None):
    """Read the template's ico5 cortical source space (2 x 10242 vertices).

    Parameters
    ----------
    subjects_dir : path-like | None
        As in :func:`fetch_fsaverage`.
    %(verbose)s

    Returns
    -------
    src : mne.SourceSpaces
        Surface source space in MRI coordinates, subject ``fsaverage``.

    See Also
    --------
    mne_brainforge.make_fsaverage_forward : Its ``fwd['src']`` is this source
        space in head coordinates.

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_00_quickstart.py`.

    Examples
    --------
    The source closest to a position in MRI coordinates (close to MNI), in m:

    >>> import numpy as np
    >>> import mne_brainforge as bf
    >>> src = bf.datasets.read_fsaverage_source_space()
    >>> [s["nuse"] for s in src]
    [10242, 10242]
    >>> distances = np.linalg.norm(src[0]["rr"] - [-0.055, -0.02, 0.005], axis=1)
    >>> vertex = int(np.argmin(distances))  # left hemisphere
    """
    return mne.read_source_spaces(_bem_dir(subjects_dir) / _SRC, verbose=False)


def fsaverage_trans_path(subjects_dir=None):
    """Path of the template's head <-> MRI transform (``-trans.fif``).

    Parameters
    ----------
    subjects_dir : path-like | None
        As in :func:`fetch_fsaverage`.

    Returns
    -------
    fname : Path
        The ``fsaverage-trans.fif`` file of the template (built first if
        needed, see :func:`fetch_fsaverage`).

    Examples
    --------
    >>> import mne
    >>> import mne_brainforge as bf
    >>> trans = mne.read_trans(bf.datasets.fsaverage_trans_path())
    """
    return _bem_dir(subjects_dir) / _TRANS


@verbose
def make_fsaverage_bem_solution(
    conductivity=DEFAULT_CONDUCTIVITY,
    *,
    skull_thickness=DEFAULT_SKULL_THICKNESS,
    subjects_dir=None,
    verbose=None,
):
    """Return the template's 3-layer BEM solution, computed once per variant.

    Parameters
    ----------
    conductivity : tuple of float, shape (3,)
        Brain, skull and scalp conductivities in S/m.
    skull_thickness : float
        Largest skull thickness (m) of the derived outer skull (default 7 mm;
        where the scalp is close the skull takes half the room, see
        :func:`~mne_brainforge.head._geometry.make_outer_skull`). Other values
        give another head model, e.g. to simulate data with a head that differs
        from the one an inverse method is given.
    subjects_dir : path-like | None
        As in :func:`fetch_fsaverage`.
    %(verbose)s

    Returns
    -------
    bem : mne.bem.ConductorModel
        The BEM solution. Variants other than the default are computed on first
        use (about a minute) and cached next to it.

    See Also
    --------
    mne_brainforge.make_fsaverage_forward : Takes the same ``conductivity`` and
        ``skull_thickness``.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> bem = bf.datasets.make_fsaverage_bem_solution()  # the default head
    >>> bem_thin = bf.datasets.make_fsaverage_bem_solution(
    ...     (0.33, 0.0105, 0.33), skull_thickness=5.5e-3)
    """
    conductivity = _check_conductivity(conductivity)
    skull_thickness = float(skull_thickness)
    if not 2e-3 <= skull_thickness <= 15e-3:
        raise ValueError(
            f"skull_thickness is in metres and must be within 2-15 mm, got {skull_thickness}."
        )
    bem_dir = _bem_dir(subjects_dir)

    def write(tmp):
        logger.info(
            f"Computing the BEM solution for conductivity {conductivity} and skull "
            f"thickness {skull_thickness * 1e3:g} mm ..."
        )
        if skull_thickness == DEFAULT_SKULL_THICKNESS:
            model = mne.read_bem_surfaces(bem_dir / _BEM_SURF, verbose=False)
        else:
            model = _bem_model_with_skull(bem_dir, skull_thickness)
        sigma = dict(zip(_LAYER_IDS, conductivity))
        for surf in model:
            surf["sigma"] = sigma[surf["id"]]
        solution = mne.make_bem_solution(model, verbose=False)
        mne.write_bem_solution(tmp, solution, overwrite=True)

    fname = cached_file(
        bem_dir / _bem_solution_name(conductivity, skull_thickness), write
    )
    return mne.read_bem_solution(fname, verbose=False)


def _bem_model_with_skull(bem_dir, skull_thickness):
    """BEM surfaces of the template with an outer skull of another thickness."""
    inner_rr, tris = nib.freesurfer.read_geometry(bem_dir / "inner_skull.surf")
    scalp_rr, scalp_tris = nib.freesurfer.read_geometry(bem_dir / "outer_skin.surf")
    outer_rr = geo.make_outer_skull(
        inner_rr / 1e3, tris, scalp_rr / 1e3, scalp_tris, max_thickness=skull_thickness
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp_bem = Path(tmp) / SUBJECT / "bem"
        tmp_bem.mkdir(parents=True)
        for name in ("inner_skull.surf", "outer_skin.surf"):
            shutil.copyfile(bem_dir / name, tmp_bem / name)
        nib.freesurfer.write_geometry(
            tmp_bem / "outer_skull.surf", outer_rr * 1e3, tris
        )
        return mne.make_bem_model(
            SUBJECT,
            ico=None,
            conductivity=DEFAULT_CONDUCTIVITY,
            subjects_dir=tmp,
            verbose=False,
        )


def _check_conductivity(conductivity):
    values = np.asarray(conductivity, float)
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            "conductivity must be three positive numbers (brain, skull, scalp) in "
            f"S/m, e.g. {DEFAULT_CONDUCTIVITY}; got {conductivity!r}."
        )
    return tuple(float(v) for v in values)


def source_depths(subjects_dir=None):
    """Depth (m) of each template source below the inner skull, forward order.

    Parameters
    ----------
    subjects_dir : path-like | None
        As in :func:`~mne_brainforge.datasets.fetch_fsaverage`.

    Returns
    -------
    depths : ndarray, shape (n_sources,)
        Distance (m) of each source of
        :func:`~mne_brainforge.datasets.read_fsaverage_source_space` to the
        inner skull surface.

    Examples
    --------
    >>> from mne_brainforge.head import source_depths
    >>> depths = source_depths()
    >>> depths.shape
    (20484,)
    """
    subjects_dir = fetch_fsaverage(subjects_dir)
    rr, tris = nib.freesurfer.read_geometry(
        subjects_dir / "fsaverage/bem/inner_skull.surf"
    )
    src = read_fsaverage_source_space(subjects_dir)
    pos = np.concatenate([s["rr"][s["vertno"]] for s in src])
    return geo.surface_distance(pos, rr / 1e3, tris)
