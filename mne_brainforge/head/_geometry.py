"""Template-head geometry built from data that installed packages ship.

Cortex: nilearn's fsaverage5 meshes (ico5, 10242 vertices per hemisphere; they are
vertices 0..10241 of the full fsaverage, so estimates on them are ordinary fsaverage
ico5 estimates). Inner skull and scalp: the surfaces that MNE-Python ships in
``mne/data/fsaverage``. Outer skull: derived from the inner skull (see
:func:`make_outer_skull`), because no package ships one.
"""

from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pyvista as pv
from mne.surface import mesh_edges
from scipy import sparse
from scipy.spatial import cKDTree

#: Hemisphere names as nilearn and FreeSurfer spell them.
HEMIS = {"lh": "left", "rh": "right"}
N_VERTICES_ICO5 = 10242
N_VERTICES_ICO4 = 2562

# nilearn fsaverage5 mesh key -> FreeSurfer surface name
_CORTEX_SURFACES = {
    "white_matter": "white",
    "pial": "pial",
    "inflated": "inflated",
    "sphere": "sphere",
}


def mne_fsaverage_data_dir():
    """Return the folder of fsaverage files that MNE-Python ships."""
    return Path(mne.__file__).parent / "data" / "fsaverage"


def nilearn_fsaverage5_dir():
    """Return the folder of fsaverage5 data files that nilearn ships."""
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5"


def write_cortex_surfaces(surf_dir):
    """Write FreeSurfer ``surf/{lh,rh}.*`` files from nilearn's fsaverage5 meshes.

    Writes white, pial, inflated, sphere, sphere.reg (fsaverage is its own
    registration target, so sphere.reg is the sphere) and curv.
    """
    from nilearn.datasets import load_fsaverage

    meshes = load_fsaverage("fsaverage5")
    surf_dir = Path(surf_dir)
    for hemi, side in HEMIS.items():
        for key, name in _CORTEX_SURFACES.items():
            part = meshes[key].parts[side]
            rr = np.asarray(part.coordinates, np.float64)
            tris = np.asarray(part.faces, np.int32)
            if len(rr) != N_VERTICES_ICO5:
                raise RuntimeError(
                    f"nilearn's fsaverage5 {key} has {len(rr)} vertices, expected "
                    f"{N_VERTICES_ICO5}; check the installed nilearn version."
                )
            nib.freesurfer.write_geometry(surf_dir / f"{hemi}.{name}", rr, tris)
            if name == "sphere":
                nib.freesurfer.write_geometry(surf_dir / f"{hemi}.sphere.reg", rr, tris)
        curv = (
            nib.load(nilearn_fsaverage5_dir() / f"curv_{side}.gii.gz").darrays[0].data
        )
        nib.freesurfer.write_morph_data(
            surf_dir / f"{hemi}.curv", curv.astype(np.float32)
        )


def read_shipped_bem_surface(fname):
    """Read one BEM surface (MRI coordinates, metres) from MNE's fsaverage data."""
    return mne.read_bem_surfaces(mne_fsaverage_data_dir() / fname, verbose=False)[0]


def inner_skull_ico4():
    """Return the shipped ico5 inner skull decimated exactly to ico4 (5120 triangles).

    The shipped surface has icosahedral topology; the ico4 vertices are a subset of
    the ico5 ones, so decimation is a re-indexing, not a resampling.
    """
    from mne.surface import _get_ico_surface

    inner = read_shipped_bem_surface("fsaverage-inner_skull-bem.fif")
    ico4, ico5 = _get_ico_surface(4), _get_ico_surface(5)
    if len(inner["rr"]) != len(ico5["rr"]):
        raise RuntimeError("MNE's shipped fsaverage inner skull is no longer ico5.")
    dist, idx = cKDTree(ico5["rr"]).query(ico4["rr"])
    assert dist.max() < 1e-3  # ico4 vertices are ico5 vertices
    return inner["rr"][idx].astype(np.float64), ico4["tris"].astype(np.int32)


def _polydata(rr, tris):
    return pv.PolyData(rr, np.c_[np.full(len(tris), 3), tris].ravel())


def surface_distance(points, rr, tris):
    """Unsigned distance (m) from each point to the triangulated surface."""
    poly = pv.PolyData(np.asarray(points, float))
    dist = poly.compute_implicit_distance(_polydata(rr, tris))["implicit_distance"]
    return np.abs(dist)


def _smooth(values, tris, n_iter):
    """Average values over each vertex's 1-ring, ``n_iter`` times."""
    adj = mesh_edges(tris).tocsr() + sparse.eye(int(tris.max()) + 1, format="csr")
    deg = np.asarray(adj.sum(1)).ravel()
    for _ in range(n_iter):
        values = adj @ values / deg
    return values


def make_outer_skull(
    inner_rr, tris, scalp_rr, scalp_tris, *, max_thickness=7e-3, fraction=0.5
):
    """Derive an outer skull surface from the inner skull and the scalp.

    The target thickness at each inner-skull vertex is
    ``min(max_thickness, fraction * d)``, ``d`` the distance from that vertex to
    the scalp, smoothed over the mesh (so the skull takes half of the tissue
    between brain and skin where the scalp is close, 7 mm elsewhere). Each outer
    vertex is then placed on the ray from the inner skull's centre through its
    inner vertex, at the first point whose distance to the inner-skull *surface*
    equals the target. So the skull is that thick in the true (closest-point)
    sense, unlike a plain radial or normal offset, which thins the skull where the
    surface is oblique to the ray and folds it in concavities (skull base); there
    the level set fills the fold as real bone does. The outer skull keeps the
    inner skull's ico4 topology.

    Parameters
    ----------
    inner_rr, tris : ndarray
        Inner skull vertices (m) and triangles.
    scalp_rr, scalp_tris : ndarray
        Scalp vertices (m) and triangles.
    max_thickness : float
        Skull thickness (m) where the scalp is far enough.
    fraction : float
        Largest fraction of the inner-skull-to-scalp distance given to the skull.

    Returns
    -------
    outer_rr : ndarray, shape (n_vertices, 3)
        The outer skull vertices (m), triangles as ``tris``.
    """
    gap = surface_distance(inner_rr, scalp_rr, scalp_tris)
    bound = fraction * gap
    target = np.minimum(_smooth(np.minimum(bound, max_thickness), tris, 5), bound)

    centre = inner_rr.mean(0)
    rays = inner_rr - centre
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    steps = np.arange(0.0, 4 * max_thickness + 2e-3, 2e-4)  # 0.2 mm sampling
    samples = inner_rr[:, None] + rays[:, None] * steps[None, :, None]
    dist = surface_distance(samples.reshape(-1, 3), inner_rr, tris)
    dist = dist.reshape(len(inner_rr), len(steps))
    reached = dist >= target[:, None]
    if not reached.any(1).all():
        raise RuntimeError(
            "Outer skull construction failed: a ray never left the skull."
        )
    # linear interpolation between the last sample short of the target and the first
    # one past it
    idx = np.arange(len(inner_rr))
    k1 = np.argmax(reached, axis=1)
    k0 = np.maximum(k1 - 1, 0)
    d0, d1 = dist[idx, k0], dist[idx, k1]
    frac = np.clip((target - d0) / np.maximum(d1 - d0, 1e-12), 0.0, 1.0)
    radial = steps[k0] + frac * (steps[k1] - steps[k0])
    return inner_rr + rays * radial[:, None]
