"""apply_brainforge_inverse on Evoked data."""

import mne
import numpy as np
import pytest

from mne_brainforge.inverse import apply_brainforge_inverse
from mne_brainforge.training import train_model


@pytest.fixture(scope="module")
def tiny_model(fwd32, spike_library):
    return train_model(fwd32, library=spike_library, n_regions=60, steps=4, batch_size=4,
                       val_every=4, val_samples=2, net_kwargs=dict(d_model=32),
                       num_workers=0, verbose=False)  # fmt: skip


@pytest.fixture(scope="module")
def evoked(fwd32):
    info = mne.create_info(fwd32["info"]["ch_names"] + ["EOG1"], 250.0, ["eeg"] * 32 + ["eog"])
    info.set_montage("biosemi32", on_missing="ignore")
    rng = np.random.default_rng(0)
    evoked = mne.EvokedArray(rng.standard_normal((33, 175)) * 1e-6, info, tmin=-0.2)
    evoked.info["bads"] = ["Fp1"]
    return evoked


def test_estimate_shape_time_and_units(tiny_model, fwd32, evoked):
    before = evoked.copy()
    stc, residual = apply_brainforge_inverse(evoked, fwd32, tiny_model, return_residual=True)
    assert isinstance(stc, mne.SourceEstimate) and stc.subject == "fsaverage"
    assert stc.data.shape == (20484, 175)
    np.testing.assert_allclose(stc.times, evoked.times)
    assert [len(v) for v in stc.vertices] == [10242, 10242]
    # piecewise constant per region
    labels = tiny_model.parcellation.labels
    region0 = stc.data[labels == 0]
    np.testing.assert_allclose(region0, np.broadcast_to(region0[0], region0.shape))
    assert "Fp1" not in residual.ch_names and "EOG1" not in residual.ch_names
    assert residual.data.shape == (31, 175)
    # the residual is the (average-referenced) data minus what the estimate explains
    data = evoked.copy().pick(residual.ch_names).data
    assert np.linalg.norm(residual.data) <= np.linalg.norm(data - data.mean(0)) * (1 + 1e-9)
    assert mne.utils.object_diff(evoked, before) == ""


def test_long_data_is_windowed(tiny_model, fwd32, evoked):
    long = mne.EvokedArray(np.tile(evoked.data, 4), evoked.info, tmin=0.0)
    stc = apply_brainforge_inverse(long, fwd32, tiny_model)
    assert stc.data.shape == (20484, 700) and np.all(np.isfinite(stc.data))


def test_clear_errors(tiny_model, fwd32, evoked):
    with pytest.raises(ValueError, match="No model given"):
        apply_brainforge_inverse(evoked, fwd32)
    restricted = mne.forward.restrict_forward_to_stc(
        fwd32, mne.SourceEstimate(np.zeros((200, 1)), [np.arange(100), np.arange(100)], 0, 1)
    )
    with pytest.raises(ValueError, match="train_model"):
        apply_brainforge_inverse(evoked, restricted, tiny_model)
    with pytest.raises(ValueError, match="pick_ori"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model, pick_ori="vector")
    with pytest.raises(TypeError, match="mne.Evoked"):
        apply_brainforge_inverse(evoked.data, fwd32, tiny_model)
