import mne
import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from mne_brainforge.head import _geometry as geo
from mne_brainforge.head import make_montage_info
from mne_brainforge.head.fitting import _dense_scalp, fit_montage_to_template


@pytest.fixture(scope="module")
def on_scalp():
    """biosemi64 in fsaverage head coordinates, projected onto the template scalp.

    (BioSemi's positions are spherical, ~5 mm off fsaverage's scalp; digitised
    positions lie on a scalp, so the ground truth is the projection.)
    """
    info = make_montage_info("biosemi64")
    pos = np.array([c["loc"][:3] for c in info["chs"]])
    trans = mne.read_trans(geo.mne_fsaverage_data_dir() / "fsaverage-trans.fif")
    points = _dense_scalp()[0]
    _, idx = cKDTree(points).query(mne.transforms.apply_trans(trans, pos))
    head = mne.transforms.apply_trans(
        mne.transforms.invert_transform(trans), points[idx]
    )
    return info.ch_names, head


def _moved(names, pos, *, mirror=False, unit=1.0):
    rng = np.random.default_rng(0)
    rot = Rotation.random(random_state=1).as_matrix()
    moved = 1.1 * (pos + rng.normal(0, 1e-3, pos.shape)) @ rot.T + [0.1, -0.2, 0.05]
    if mirror:
        moved = moved * [-1, 1, 1]
    return mne.channels.make_dig_montage(
        dict(zip(names, moved * unit)), coord_frame="unknown"
    )


def test_fit_recovers_a_moved_cap(on_scalp):
    names, pos = on_scalp
    fitted, report = fit_montage_to_template(_moved(names, pos), verbose="error")
    got = fitted.get_positions()
    assert got["coord_frame"] == "head" and got["nasion"] is not None
    fp = np.array([got["ch_pos"][n] for n in names])
    err = np.sqrt(np.mean(np.sum((fp - pos) ** 2, axis=1)))
    assert err < 3e-3  # 1 mm noise per axis was added
    assert abs(report["scale"] - 1 / 1.1) < 0.02
    assert report["rms_mm"] < 2 and report["side_agreement"] == 1.0
    assert report["runner_up_rms_mm"] > report["rms_mm"]
    # the fitted montage gives an fsaverage forward without complaint
    info = mne.create_info(names, 250.0, "eeg").set_montage(fitted)
    from mne_brainforge.head import check_eeg_positions

    assert len(check_eeg_positions(info)) == 64


def test_fit_warns_on_a_mirrored_cap(on_scalp):
    names, pos = on_scalp
    with pytest.warns(RuntimeWarning, match="mirror=True"):
        fit_montage_to_template(_moved(names, pos, mirror=True), verbose="error")
    fitted, report = fit_montage_to_template(
        _moved(names, pos, mirror=True), mirror=True, verbose="error"
    )
    assert report["side_agreement"] == 1.0 and report["mirrored"]


def test_fit_without_names_warns_and_takes_hints(on_scalp):
    names, pos = on_scalp
    codes = [f"E{i}" for i in range(len(names))]
    mon = _moved(codes, pos)
    with pytest.warns(RuntimeWarning, match="head shape alone"):
        fit_montage_to_template(mon, verbose="error")
    left = [c for c, n in zip(codes, names) if n in ("T7", "P7", "F7")]
    _, report = fit_montage_to_template(mon, hints={"left": left}, verbose="error")
    assert report["side_agreement"] == 1.0


def test_fit_refuses_bad_input(on_scalp):
    names, pos = on_scalp
    with pytest.raises(ValueError, match="millimetres"):
        fit_montage_to_template(_moved(names, pos, unit=1e3))
    with pytest.raises(ValueError, match="centimetres"):
        fit_montage_to_template(_moved(names, pos, unit=1e2))
    few = mne.channels.make_dig_montage(dict(zip(names[:5], pos[:5])))
    with pytest.raises(ValueError, match="at least 8"):
        fit_montage_to_template(few)
    nan = pos.copy()
    nan[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_montage_to_template(mne.channels.make_dig_montage(dict(zip(names, nan))))
    with pytest.raises(ValueError, match="hints keys"):
        fit_montage_to_template(_moved(names, pos), hints={"up": ["Cz"]})
