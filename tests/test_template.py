"""Geometry of the offline fsaverage template."""

import json
import shutil

import mne
import nibabel as nib
import numpy as np
import pytest
from mne.io.constants import FIFF

from mne_brainforge.datasets import (
    fetch_fsaverage,
    make_fsaverage_bem_solution,
    read_fsaverage_source_space,
)
from mne_brainforge.head._geometry import surface_distance


def _inside(points, rr, tris):
    """Whether points are inside a closed surface (solid angles sum to 4 pi)."""
    total = np.zeros(len(points))
    for tri in np.array_split(tris, 8):
        v = rr[tri][None] - points[:, None, None]  # (n_points, n_tris, 3 corners, 3)
        n = np.linalg.norm(v, axis=-1)
        a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
        na, nb, nc = n[..., 0], n[..., 1], n[..., 2]
        num = np.einsum("ijk,ijk->ij", a, np.cross(b, c))
        den = (
            na * nb * nc
            + np.einsum("ijk,ijk->ij", a, b) * nc
            + np.einsum("ijk,ijk->ij", a, c) * nb
            + np.einsum("ijk,ijk->ij", b, c) * na
        )
        total += 2 * np.arctan2(num, den).sum(1)
    return np.abs(total) > 2 * np.pi


def _read_bem_surf(subjects_dir, name):
    rr, tris = nib.freesurfer.read_geometry(
        subjects_dir / "fsaverage" / "bem" / f"{name}.surf"
    )
    return rr / 1e3, tris


def test_cortex_surfaces(subjects_dir):
    surf = subjects_dir / "fsaverage" / "surf"
    for hemi in ("lh", "rh"):
        for name in ("white", "pial", "inflated", "sphere", "sphere.reg"):
            rr, tris = nib.freesurfer.read_geometry(surf / f"{hemi}.{name}")
            assert rr.shape == (10242, 3) and tris.shape == (20480, 3)
        curv = nib.freesurfer.read_morph_data(surf / f"{hemi}.curv")
        assert (
            curv.shape == (10242,)
            and (curv > 0).mean() > 0.3
            and (curv < 0).mean() > 0.3
        )
    # ico5 sphere: these are vertices 0..10241 of the full fsaverage
    rr, _ = nib.freesurfer.read_geometry(surf / "lh.sphere")
    ico5 = mne.surface._get_ico_surface(5)["rr"]
    np.testing.assert_allclose(rr / 100.0, ico5, atol=1e-3)


def test_source_space(subjects_dir):
    src = read_fsaverage_source_space()
    assert src.kind == "surface" and src._subject == "fsaverage"
    inner = _read_bem_surf(subjects_dir, "inner_skull")
    for s in src:
        assert s["coord_frame"] == FIFF.FIFFV_COORD_MRI
        np.testing.assert_array_equal(s["vertno"], np.arange(10242))
        assert _inside(s["rr"][::20], *inner).all()
    # left hemisphere on the left (RAS)
    assert src[0]["rr"][:, 0].mean() < -0.02 < 0.02 < src[1]["rr"][:, 0].mean()


def test_bem_layers_nest_with_sensible_thickness(subjects_dir):
    inner, outer, skin = (
        _read_bem_surf(subjects_dir, n)
        for n in ("inner_skull", "outer_skull", "outer_skin")
    )
    assert len(inner[0]) == len(outer[0]) == 2562 and len(inner[1]) == 5120
    assert _inside(inner[0], *outer).all()
    assert _inside(outer[0], *skin).all()
    skull = surface_distance(outer[0], *inner)
    scalp = surface_distance(outer[0], *skin)
    assert skull.min() > 3e-3 and 5e-3 < np.median(skull) <= 7.05e-3
    assert scalp.min() > 3e-3
    stats = json.loads(
        (subjects_dir / "fsaverage" / "bem" / "geometry.json").read_text()
    )
    assert stats["skull_thickness_mm"]["min"] == pytest.approx(
        skull.min() * 1e3, abs=0.05
    )


def test_bem_solution_conductivities(subjects_dir):
    bem = make_fsaverage_bem_solution()
    assert bem["is_sphere"] is False and len(bem["surfs"]) == 3
    sigma = {s["id"]: s["sigma"] for s in bem["surfs"]}
    assert sigma[FIFF.FIFFV_BEM_SURF_ID_BRAIN] == pytest.approx(0.3)
    assert sigma[FIFF.FIFFV_BEM_SURF_ID_SKULL] == pytest.approx(0.006)
    with pytest.raises(ValueError, match="three positive numbers"):
        make_fsaverage_bem_solution((0.3, -1, 0.3))


def test_trans_and_fiducials_match_mne(subjects_dir):
    bem_dir = subjects_dir / "fsaverage" / "bem"
    trans = mne.read_trans(bem_dir / "fsaverage-trans.fif")
    assert (
        trans["from"] == FIFF.FIFFV_COORD_HEAD and trans["to"] == FIFF.FIFFV_COORD_MRI
    )
    fids, frame = mne.io.read_fiducials(bem_dir / "fsaverage-fiducials.fif")
    assert frame == FIFF.FIFFV_COORD_MRI and len(fids) == 3


def test_refuses_foreign_fsaverage(tmp_path):
    (tmp_path / "fsaverage" / "surf").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="left untouched"):
        fetch_fsaverage(tmp_path)
    assert (tmp_path / "fsaverage" / "surf").is_dir()


@pytest.mark.slow
def test_corrupt_template_is_rebuilt(subjects_dir, tmp_path):
    copy = tmp_path / "fsaverage"
    shutil.copytree(subjects_dir / "fsaverage", copy)
    src_file = copy / "bem" / "fsaverage-ico5-src.fif"
    src_file.write_bytes(src_file.read_bytes()[:1000])  # truncated, as by a crash
    assert fetch_fsaverage(tmp_path) == tmp_path
    src = read_fsaverage_source_space(tmp_path)
    assert [len(s["vertno"]) for s in src] == [10242, 10242]
