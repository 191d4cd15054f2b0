"""Fit a digitised electrode cloud onto the fsaverage template scalp."""

import functools
import itertools
import re
import warnings

import mne
import numpy as np
from mne.utils import logger, verbose
from scipy.spatial import cKDTree

from ..utils import check_type
from . import _geometry as geo

#: Fewest electrodes whose shape constrains a rigid + scale fit.
MIN_ELECTRODES = 8
#: Median electrode distance (m) from the cloud's centroid that a head can have.
_RADIUS_RANGE = (0.03, 0.2)
#: Subdivisions per scalp-triangle edge for the closest-point search (~1 mm spacing).
_SUBDIVISIONS = 5
#: Candidate fits within this rms (m) of the best are ranked by names/hints.
_AMBIGUITY = 3e-3
_HINT_KEYS = ("left", "right", "anterior", "posterior", "superior")


def _unit_guess(radius):
    if 30 <= radius <= 200:
        return "millimetres"
    if 3 <= radius <= 20:
        return "centimetres"
    return None


def _check_positions(montage):
    check_type(montage, (mne.channels.DigMontage,), "montage")
    pos = montage.get_positions()
    names = list(pos["ch_pos"])
    if len(names) < MIN_ELECTRODES:
        raise ValueError(
            f"The montage has {len(names)} electrode positions; fitting its shape to "
            f"the template needs at least {MIN_ELECTRODES}."
        )
    rr = np.array([pos["ch_pos"][n] for n in names], float)
    bad = [n for n, r in zip(names, rr) if not np.all(np.isfinite(r))]
    if bad:
        raise ValueError(
            f"{len(bad)} electrodes have non-finite positions ({', '.join(bad[:10])}); "
            "drop them from the montage first."
        )
    radius = np.median(np.linalg.norm(rr - rr.mean(0), axis=1))
    if not _RADIUS_RANGE[0] <= radius <= _RADIUS_RANGE[1]:
        unit = _unit_guess(radius)
        guess = (
            f" They look like {unit}: divide them by "
            f"{1000 if unit == 'millimetres' else 100} (metres expected)."
            if unit
            else " Expected metres (about 0.09 for an adult head)."
        )
        raise ValueError(
            f"The electrodes lie a median {radius:g} from their centroid, which is "
            f"not a head size in metres.{guess}"
        )
    fids = [pos[k] for k in ("nasion", "lpa", "rpa")]
    fids = np.array(fids, float) if all(f is not None for f in fids) else None
    return names, rr, fids


@functools.lru_cache(maxsize=1)
def _dense_scalp():
    """Template scalp points and normals (MRI coordinates, m), ~1 mm apart."""
    scalp = geo.read_shipped_bem_surface("fsaverage-head.fif")
    rr, nn, tris = scalp["rr"], scalp["nn"], scalp["tris"]
    n = _SUBDIVISIONS
    bary = np.array(
        [(i, j, n - i - j) for i in range(n + 1) for j in range(n + 1 - i)], float
    )
    bary /= n
    points = np.einsum("bk,tkd->tbd", bary, rr[tris]).reshape(-1, 3)
    normals = np.einsum("bk,tkd->tbd", bary, nn[tris]).reshape(-1, 3)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return points, normals, rr, tris


def _template_fiducials_mri():
    fids, _ = mne.io.read_fiducials(
        geo.mne_fsaverage_data_dir() / "fsaverage-fiducials.fif", verbose=False
    )
    by_kind = {int(f["ident"]): f["r"] for f in fids}
    ids = mne.io.constants.FIFF
    return np.array(
        [
            by_kind[ids.FIFFV_POINT_NASION],
            by_kind[ids.FIFFV_POINT_LPA],
            by_kind[ids.FIFFV_POINT_RPA],
        ]
    )


def _similarity(src, dst, scale):
    """Least-squares ``dst ~ s R src + t`` with R a proper rotation (Umeyama)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    s = np.trace(np.diag(sv) @ d) / np.sum(a**2) if scale else 1.0
    return s, rot, mu_d - s * rot @ mu_s


def _icp(rr, tree, points, normals, s, rot, t, *, scale, n_iter):
    """Point-to-plane ICP (Gauss-Newton on a small similarity per step).

    Point-to-plane lets the cloud slide along the surface, so it converges in
    tens of steps where point-to-point needs hundreds.
    """
    for _ in range(n_iter):
        moved = s * rr @ rot.T + t
        _, idx = tree.query(moved)
        nrm = normals[idx]
        resid = np.sum(nrm * (moved - points[idx]), axis=1)
        # columns: rotation vector (3), translation (3), relative scale (1)
        jac = np.c_[np.cross(moved, nrm), nrm, np.sum(nrm * moved, axis=1)]
        jac = jac if scale else jac[:, :6]
        step = np.linalg.lstsq(jac, -resid, rcond=None)[0]
        small = _rotvec_matrix(step[:3])
        ds = 1.0 + step[6] if scale else 1.0
        rot, s = small @ rot, s * ds
        t = ds * small @ t + step[3:6]
        if np.abs(step).max() < 1e-6:
            break
    dist, _ = tree.query(s * rr @ rot.T + t)
    return s, rot, t, float(np.sqrt(np.mean(dist**2)))


def _rotvec_matrix(w):
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(w).as_matrix()


def _axes(x):
    """Principal axes (columns, largest variance first) of a point cloud."""
    evals, evecs = np.linalg.eigh(np.cov((x - x.mean(0)).T))
    return evecs[:, ::-1], evals[::-1]


def _initial_guesses(rr, cap):
    """Similarity transforms aligning the clouds' moments: 24 proper rotations."""
    ax_e, ev_e = _axes(rr)
    ax_t, ev_t = _axes(cap)
    s = np.sqrt(ev_t.sum() / ev_e.sum())
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            rot = ax_t @ (np.eye(3)[list(perm)] * signs).T @ ax_e.T
            if np.linalg.det(rot) > 0:
                yield s, rot, cap.mean(0) - s * rot @ rr.mean(0)


# 10-05 names: a lobe prefix, then z (midline) or a number, odd on the left
_STANDARD_NAME = re.compile(
    r"^(?P<prefix>n|fp|af|f|ft|fc|t|c|tp|cp|p|po|o|i)(?P<num>\d+|z)h?$", re.IGNORECASE
)


def _expected_sides(names, hints):
    """Map channel name -> set of sides it must lie on (10-05 names + hints)."""
    sides = {}
    for name in names:
        m = _STANDARD_NAME.match(name)
        if m is None:
            continue
        if m["num"].isdigit():
            sides.setdefault(name, set()).add("left" if int(m["num"]) % 2 else "right")
        if m["prefix"].lower() in ("n", "fp", "af"):
            sides.setdefault(name, set()).add("anterior")
        elif m["prefix"].lower() in ("o", "po", "i"):
            sides.setdefault(name, set()).add("posterior")
    # a few 10-05-like names in an otherwise custom cap say nothing
    if len(sides) < MIN_ELECTRODES // 2:
        sides = {}
    for key, chans in (hints or {}).items():
        for ch in chans:
            sides.setdefault(ch, set()).add(key)
    return sides


def _side_agreement(fitted, names, sides, centre):
    """Fraction of (electrode, side) constraints that the fitted positions satisfy."""
    index = {n: i for i, n in enumerate(names)}
    tests = {
        "left": lambda r: r[0] < centre[0],
        "right": lambda r: r[0] > centre[0],
        "anterior": lambda r: r[1] > centre[1],
        "posterior": lambda r: r[1] < centre[1],
        "superior": lambda r: r[2] > centre[2],
    }
    checks = [tests[side](fitted[index[n]]) for n, ss in sides.items() for side in ss]
    return float(np.mean(checks)) if checks else None


def _check_hints(hints, names):
    if hints is None:
        return None
    check_type(hints, (dict,), "hints")
    for key, chans in hints.items():
        if key not in _HINT_KEYS:
            raise ValueError(
                f"hints keys must be among {_HINT_KEYS}, got {key!r}; e.g. "
                "hints={'left': ['A12'], 'anterior': ['C30']}."
            )
        missing = [c for c in chans if c not in names]
        if missing:
            raise ValueError(f"hints[{key!r}] names unknown channels {missing}.")
    return hints


def _best_fit(rr, fids, names, sides, scale):
    """Best similarity of ``rr`` onto the scalp over all initial orientations.

    Returns (s, rot, t, upright, agreement, runner-up rms (m) or None).
    """
    points, normals, scalp_rr, _ = _dense_scalp()
    tree = cKDTree(points)
    tmpl_fids = _template_fiducials_mri()
    plane = tmpl_fids[:, 2].mean() - 0.02  # nasion-ear plane, less 2 cm
    if fids is not None:
        guesses = [_similarity(fids, tmpl_fids, scale)]
    else:
        guesses = list(_initial_guesses(rr, scalp_rr[scalp_rr[:, 2] > plane]))
    fits = []
    for s, rot, t in guesses:
        s, rot, t, _ = _icp(
            rr, tree, points, normals, s, rot, t, scale=False, n_iter=30
        )
        fits.append(_icp(rr, tree, points, normals, s, rot, t, scale=scale, n_iter=100))
    moved = [s * rr @ rot.T + t for s, rot, t, _ in fits]
    rms = np.array([f[3] for f in fits])
    agree = [_side_agreement(m, names, sides, tmpl_fids.mean(0)) for m in moved]
    upright = [np.mean(m[:, 2] > plane) >= 0.8 for m in moved]
    close = np.flatnonzero(rms <= rms.min() + _AMBIGUITY)
    # among near-equal fits: upright first, then the most name/hint sides met
    best = int(max(close, key=lambda i: (upright[i], agree[i] or 0, -rms[i])))
    # the best fit of an orientation whose electrodes land elsewhere (> 2 cm)
    others = [
        f[3]
        for f, m in zip(fits, moved)
        if np.median(np.linalg.norm(m - moved[best], axis=1)) > 0.02
    ]
    s, rot, t, _ = fits[best]
    return s, rot, t, upright[best], agree[best], min(others) if others else None


@verbose
def fit_montage_to_template(
    montage, *, scale=True, hints=None, mirror=False, verbose=None
):
    """Fit electrode positions onto the fsaverage scalp (rigid + isotropic scale).

    Iterative closest point (ICP) registration of the electrode cloud onto the
    template scalp (MNE's shipped ``fsaverage-head.fif``, sampled at about
    1 mm), from 24 initial orientations that align the principal axes of the
    cloud with those of the template's upper head; the fit with the smallest rms
    residual wins. If the montage has nasion and LPA/RPA, they give the only
    initial guess instead, so the orientation is known.

    Only proper rotations are tried, so a position file in a right-handed frame
    (any digitiser's) keeps its handedness. What positions alone cannot tell is a
    front/back swap of a near-symmetric cap (a half turn, which also swaps left
    and right) or a mirrored (left-handed) file. Standard 10-05 names (odd =
    left, Fp/AF anterior, O/PO posterior) and ``hints`` are used to rank the
    candidate fits within 3 mm rms of the best and to check the result; without
    either a warning says that the orientation rests on head shape alone.

    Parameters
    ----------
    montage : mne.channels.DigMontage
        Electrode positions in metres, in any coordinate frame.
    scale : bool
        Fit an isotropic scale factor (the template head is generally not the
        subject's size). If False, the fit is rigid.
    hints : dict | None
        Known sides of some electrodes, keys among ``'left'``, ``'right'``,
        ``'anterior'``, ``'posterior'``, ``'superior'``, values lists of channel
        names, e.g. ``{'left': ['L5G'], 'anterior': ['L3B']}``.
    mirror : bool
        Flip the first coordinate of the positions before fitting, for a file
        in a left-handed frame (a warning says when the names suggest this).
    %(verbose)s

    Returns
    -------
    fitted : mne.channels.DigMontage
        The electrodes in fsaverage head coordinates (m), with the template's
        fiducials, ready for :func:`mne_brainforge.make_fsaverage_forward`.
    report : dict
        ``rms_mm``, ``max_mm`` (electrode-to-scalp distance after the fit),
        ``scale``, ``rotation`` (3x3), ``translation`` (m) of the map from the
        input positions to fsaverage MRI coordinates ``x' = s R x + t``,
        ``runner_up_rms_mm`` (best fit of a clearly different orientation),
        ``side_agreement`` (fraction of name/hint constraints met, or None),
        ``mirrored``.

    Examples
    --------
    >>> import mne
    >>> from mne_brainforge.head.fitting import fit_montage_to_template
    >>> mon = mne.channels.make_standard_montage("biosemi64")
    >>> fitted, report = fit_montage_to_template(mon, verbose="error")
    >>> report["rms_mm"] < 5
    True
    """
    names, rr, fids = _check_positions(montage)
    hints = _check_hints(hints, names)
    if mirror:
        rr = rr * [-1, 1, 1]
        fids = None if fids is None else fids * [-1, 1, 1]
    sides = _expected_sides(names, hints)
    s, rot, t, upright, agree, runner_up = _best_fit(rr, fids, names, sides, scale)
    _, _, scalp_rr, scalp_tris = _dense_scalp()
    tmpl_fids = _template_fiducials_mri()
    fitted_mri = s * rr @ rot.T + t
    dist = geo.surface_distance(fitted_mri, scalp_rr, scalp_tris)

    dist = geo.surface_distance(fitted_mri, scalp_rr, scalp_tris)

    if not upright:
        warnings.warn(
            "Under 80% of the electrodes lie above the template's nasion-ear "
            "plane after the fit; the fit is probably upside down or the positions "
            "are not a scalp cap.",
            RuntimeWarning,
            stacklevel=2,
        )
    if agree is not None and agree < 0.8:
        *_, flipped, _ = _best_fit(rr * [-1, 1, 1], None, names, sides, scale)
        hint = (
            " The montage looks mirrored (left and right swapped, a left-handed "
            "position file): pass mirror=True."
            if flipped > agree
            else ""
        )
        warnings.warn(
            f"Only {agree:.0%} of the sides that the channel names/hints give "
            f"are met after the fit.{hint}",
            RuntimeWarning,
            stacklevel=2,
        )
    if fids is None and not sides:
        gap = (
            ""
            if runner_up is None
            else f" (the next orientation: {runner_up * 1e3:.1f} mm rms)"
        )
        warnings.warn(
            "The orientation was chosen from the head shape alone (no fiducials, "
            f"standard names or hints){gap}: front/back and left/right cannot be "
            "verified from positions, and a mirrored position file fits as well. "
            "Pass hints={'left': [...], 'anterior': [...]} with a few channel names "
            "whose side you know.",
            RuntimeWarning,
            stacklevel=2,
        )
    logger.info(
        f"Fitted {len(names)} electrodes to the fsaverage scalp: rms "
        f"{np.sqrt(np.mean(dist**2)) * 1e3:.1f} mm, max {dist.max() * 1e3:.1f} mm, "
        f"scale {s:.3f}"
    )

    # fsaverage MRI -> head coordinates, where MNE expects EEG positions
    mri_head = mne.transforms.invert_transform(
        mne.read_trans(geo.mne_fsaverage_data_dir() / "fsaverage-trans.fif")
    )
    to_head = lambda x: mne.transforms.apply_trans(mri_head, x)  # noqa: E731
    head_rr, head_fids = to_head(fitted_mri), to_head(tmpl_fids)
    fitted = mne.channels.make_dig_montage(
        ch_pos=dict(zip(names, head_rr)),
        nasion=head_fids[0],
        lpa=head_fids[1],
        rpa=head_fids[2],
        coord_frame="head",
    )
    report = {
        "rms_mm": float(np.sqrt(np.mean(dist**2)) * 1e3),
        "max_mm": float(dist.max() * 1e3),
        "scale": float(s),
        "rotation": rot,
        "translation": t,
        "runner_up_rms_mm": None if runner_up is None else runner_up * 1e3,
        "side_agreement": agree,
        "mirrored": bool(mirror),
    }
    return fitted, report
