"""Deep (subcortical) sources of the template, from data that nilearn ships offline.

Where the structures are comes from two files of nilearn's package data:

- the ICBM 2009c MNI152 grey-matter probability map
  (``mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz``): which voxels are grey
  matter;
- the Seitzman et al. (2018) regions of interest
  (``seitzman_2018_ROIs_300inVol_MNI_allInfo.txt`` and its anatomical labels),
  whose subcortical centres are labelled hippocampus, amygdala, basal ganglia and
  thalamus: which structure a grey-matter voxel belongs to.

A grid point is a source of a structure if the grey-matter probability there is
at least 0.3 and the nearest labelled centre within 9 mm is one of the
structure's (the hippocampus gets centres along the segment between its
anterior and posterior centres, 27 mm apart). The basal-ganglia centres are
split by their distance from the midline: caudate (< 17 mm), putamen (> 22 mm);
the centre in between (the pallidum) is left out. Grid points within 3 mm of
a cortical source are dropped (the cortex models them already). MNI152
positions are mapped to fsaverage (MNI305) with FreeSurfer's linear transform.

References
----------
Seitzman B. A. et al. (2018). A set of functionally-defined brain regions with
improved representation of the subcortex and cerebellum. NeuroImage 206, 116290.

Fonov V. et al. (2011). Unbiased average age-appropriate atlases for pediatric
studies. NeuroImage 54(1), 313-327.
"""

from pathlib import Path

import mne
import nibabel as nib
import numpy as np
from mne.utils import logger, verbose
from scipy.spatial import cKDTree

from ..utils import cached_file, check_number
from .template import (
    SUBJECT,
    _bem_dir,
    _default_subjects_dir,
    read_fsaverage_source_space,
)

#: The deep structures, in the order of their source spaces (each: both hemispheres).
DEEP_STRUCTURES = ("thalamus", "hippocampus", "amygdala", "caudate", "putamen")
#: Default grid spacing of the deep sources (m).
DEEP_SPACING = 5e-3

_GM_THRESHOLD = 0.3
_ROI_RADIUS = 9.0  # mm
_MIN_CORTEX_DISTANCE = 3e-3  # m
# Seitzman anatomical label codes
_LABELS = {3: "hippocampus", 4: "amygdala", 5: "basal ganglia", 6: "thalamus"}
_CAUDATE_MAX_X, _PUTAMEN_MIN_X = 17.0, 22.0  # mm from the midline
# MNI152 (mm) -> MNI305 (mm), i.e. fsaverage surface RAS (FreeSurfer's
# CoordinateSystems documentation)
_MNI152_TO_MNI305 = np.array(
    [
        [1.0022, 0.0071, -0.0177, 0.0528],
        [-0.0146, 0.9990, 0.0027, -1.5519],
        [0.0129, 0.0094, 1.0027, -1.2012],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _nilearn_data():
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


def _structure_centres():
    """Labelled centres (MNI152, mm) of the deep structures: (centres, names)."""
    data = _nilearn_data()
    xyz = np.loadtxt(
        data / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt",
        skiprows=1,
        usecols=(0, 1, 2),
    )
    codes = (data / "seitzman_2018_ROIs_anatomicalLabels.txt").read_text().split()
    codes = np.array(codes[1:], int)  # the first word is the legend
    centres, names = [], []
    for centre, code in zip(xyz, codes):
        name = _LABELS.get(code)
        if name == "basal ganglia":
            lateral = abs(centre[0])
            if lateral < _CAUDATE_MAX_X:
                name = "caudate"
            elif lateral > _PUTAMEN_MIN_X:
                name = "putamen"
            else:
                continue  # the pallidum
        if name is not None:
            centres.append(centre)
            names.append(name)
    centres, names = np.array(centres), np.array(names)
    # the hippocampus is long: centres along its anterior-posterior axis
    extra = []
    for side in (-1, 1):
        pair = centres[(names == "hippocampus") & (np.sign(centres[:, 0]) == side)]
        if len(pair) == 2:
            extra += [pair[0] + f * (pair[1] - pair[0]) for f in np.linspace(0, 1, 5)]
    centres = np.concatenate([centres, extra])
    names = np.concatenate([names, ["hippocampus"] * len(extra)])
    return centres, names


def deep_source_positions(spacing=DEEP_SPACING, *, offset=0.0):
    """Positions of the deep sources on the template, per structure.

    Parameters
    ----------
    spacing : float
        Grid spacing (m), from 2 to 10 mm.
    offset : float
        Shift (m) of the grid along x, y and z, from 0 to ``spacing``: a grid
        with ``offset=spacing / 2`` lies between the points of the default one
        (the benchmark's truth sources, off the estimates' grid).

    Returns
    -------
    positions : dict of str -> ndarray, shape (n, 3)
        For each of :data:`DEEP_STRUCTURES`, the source positions (m) in
        fsaverage MRI coordinates, left hemisphere first.

    Notes
    -----
    See the module's docstring for the data and the rules.
    """
    spacing = check_number(spacing, "spacing", minimum=2e-3, maximum=10e-3)
    offset = check_number(offset, "offset", minimum=0, maximum=spacing)
    img = nib.load(_nilearn_data() / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    gm = np.asarray(img.dataobj, np.float32)
    gm /= gm.max()
    centres, names = _structure_centres()
    lo, hi = centres.min(0) - _ROI_RADIUS, centres.max(0) + _ROI_RADIUS
    step = 1e3 * spacing
    shift = 1e3 * offset
    axes = [
        np.arange(np.floor(a / step) * step, b + step, step) + shift
        for a, b in zip(lo, hi)
    ]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    dist, nearest = cKDTree(centres).query(grid)
    ijk = np.rint(
        (np.linalg.inv(img.affine) @ np.c_[grid, np.ones(len(grid))].T)[:3].T
    ).astype(int)
    inside = np.all((ijk >= 0) & (ijk < gm.shape), axis=1)
    prob = np.zeros(len(grid))
    prob[inside] = gm[tuple(ijk[inside].T)]
    keep = (dist <= _ROI_RADIUS) & (prob >= _GM_THRESHOLD)
    mni305 = (_MNI152_TO_MNI305 @ np.c_[grid, np.ones(len(grid))].T)[:3].T
    rr = 1e-3 * mni305
    cortex = np.concatenate(
        [s["rr"][s["vertno"]] for s in read_fsaverage_source_space()]
    )
    keep &= cKDTree(cortex).query(rr)[0] >= _MIN_CORTEX_DISTANCE
    positions = {}
    for name in DEEP_STRUCTURES:
        pos = rr[keep & (names[nearest] == name)]
        positions[name] = pos[np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0] > 0))]
    return positions


def _deep_src_fname(spacing, offset):
    shifted = f"-offset{1e3 * offset:g}mm" if offset else ""
    return f"fsaverage-deep-{1e3 * spacing:g}mm{shifted}-src.fif"


@verbose
def make_deep_source_space(
    spacing=DEEP_SPACING, *, offset=0.0, subjects_dir=None, verbose=None
):
    """The template's cortex and deep structures as one mixed source space (cached).

    Parameters
    ----------
    spacing : float
        Grid spacing of the deep sources (m).
    offset : float
        Shift of their grid (m), see :func:`deep_source_positions`.
    subjects_dir : path-like | None
        As in :func:`~mne_brainforge.datasets.fetch_fsaverage`.
    %(verbose)s

    Returns
    -------
    src : mne.SourceSpaces
        The two ico5 cortical surfaces followed by one discrete (volume)
        source space per structure of :data:`DEEP_STRUCTURES` (both
        hemispheres), in MRI coordinates; ``src.kind == 'mixed'``. Forwards
        on it give free-orientation deep sources (three dipoles each).

    See Also
    --------
    deep_source_positions, mne_brainforge.make_fsaverage_forward

    Examples
    --------
    >>> from mne_brainforge.head import make_deep_source_space
    >>> src = make_deep_source_space()
    >>> src.kind
    'mixed'
    """
    spacing = check_number(spacing, "spacing", minimum=2e-3, maximum=10e-3)
    offset = check_number(offset, "offset", minimum=0, maximum=spacing)
    subjects_dir = subjects_dir or _default_subjects_dir()
    fname = _bem_dir(subjects_dir) / _deep_src_fname(spacing, offset)

    def write(tmp):
        logger.info(f"Building the deep source space ({1e3 * spacing:g} mm grid)")
        deep = []
        for name, rr in deep_source_positions(spacing, offset=offset).items():
            nn = np.tile([0.0, 0.0, 1.0], (len(rr), 1))
            deep += mne.setup_volume_source_space(
                SUBJECT,
                pos=dict(rr=rr, nn=nn),
                subjects_dir=subjects_dir,
                verbose=False,
            )
            logger.info(f"    {name}: {len(rr)} sources")
        src = read_fsaverage_source_space(subjects_dir) + mne.SourceSpaces(deep)
        src.save(tmp, overwrite=True, verbose=False)

    return mne.read_source_spaces(cached_file(fname, write), verbose=False)
