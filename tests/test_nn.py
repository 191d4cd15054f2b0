"""The topomap operator and the network modules."""

import mne
import numpy as np
import pytest
import torch
from scipy.interpolate import RegularGridInterpolator

from mne_brainforge.nn import BrainForgeNet, azimuthal_equidistant, topomap_matrix
from mne_brainforge.nn.topomap import GRID_RADIUS, METHODS, grid, masked_topomap_matrix


def _positions(name="biosemi64"):
    mon = mne.channels.make_standard_montage(name)
    return np.array(list(mon.get_positions()["ch_pos"].values()))


def test_projection_is_equidistant():
    pos = np.array([[0, 0, 0.14], [0.1, 0, 0.04], [0, -0.1, 0.04], [0, 0, -0.06]])
    xy = azimuthal_equidistant(pos)
    np.testing.assert_allclose(
        np.hypot(*xy.T), [0, np.pi / 2, np.pi / 2, np.pi], atol=1e-12
    )
    np.testing.assert_allclose(xy[1], [np.pi / 2, 0], atol=1e-12)  # right ear on +x
    np.testing.assert_allclose(xy[2], [0, -np.pi / 2], atol=1e-12)  # back on -y


@pytest.mark.parametrize("method", METHODS)
def test_smooth_field_is_recovered_at_electrodes(method):
    pos = _positions()
    field = np.sin(pos[:, 0] / 0.05) + pos[:, 1] / 0.08 + 0.5 * pos[:, 2] / 0.1
    matrix, mask = topomap_matrix(pos, size=32, method=method)
    assert matrix.shape == (32 * 32, 64) and mask.shape == (32, 32)
    assert np.all(matrix[~mask.ravel()] == 0)
    np.testing.assert_allclose(
        matrix[mask.ravel()].sum(1), 1.0, atol=1e-6
    )  # constants kept
    maps = (matrix @ field).reshape(32, 32)
    axis = (np.arange(32) + 0.5) / 32 * 2 * GRID_RADIUS - GRID_RADIUS
    sample = RegularGridInterpolator(
        (axis, axis), maps.T, bounds_error=False, fill_value=None
    )
    xy = azimuthal_equidistant(pos)
    inside = np.hypot(*xy.T) < GRID_RADIUS - 2 * (axis[1] - axis[0])
    back = sample(xy[inside])
    assert np.corrcoef(back, field[inside])[0, 1] > 0.97
    assert np.median(np.abs(back - field[inside])) < 0.1 * np.ptp(field)


def test_missing_channels_are_left_out():
    pos = _positions("biosemi32")
    keep = np.ones(32, bool)
    keep[[3, 10, 20]] = False
    matrix = masked_topomap_matrix(pos, keep, size=16)
    assert np.all(matrix[:, ~keep] == 0) and np.all(np.abs(matrix[:, keep]).sum(0) > 0)
    reference = topomap_matrix(pos[keep], 16)[0]
    np.testing.assert_allclose(matrix[:, keep], reference)
    with pytest.raises(ValueError, match="method"):
        topomap_matrix(pos, method="nearest")
    _, mask = grid(16)
    assert mask.sum() == pytest.approx(np.pi / 4 * 256, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{}, {"spatial": "mlp"}, {"temporal": "none"}, {"causal": True}]
)
def test_network_shapes_and_gradients(kwargs):
    torch.manual_seed(0)
    net = BrainForgeNet(50, size=16, d_model=32, **kwargs)
    eeg = torch.randn(3, 20, 40)
    topo = torch.as_tensor(
        topomap_matrix(_positions("biosemi32")[:20], 16)[0], dtype=torch.float32
    )
    out = net(eeg, topo)
    assert out.shape == (3, 50, 40)
    out.pow(2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # per-sample montages give the same result as a shared one
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(eeg, topo), net(eeg, topo.expand(3, -1, -1)))


def test_causal_model_ignores_the_future():
    torch.manual_seed(0)
    net = BrainForgeNet(10, size=16, d_model=32, causal=True).eval()
    topo = torch.as_tensor(
        topomap_matrix(_positions("biosemi32"), 16)[0], dtype=torch.float32
    )
    eeg = torch.randn(1, 32, 30)
    changed = eeg.clone()
    changed[..., 20:] += 5.0
    with torch.no_grad():
        a, b = net(eeg, topo), net(changed, topo)
    torch.testing.assert_close(a[..., :20], b[..., :20])
    assert not torch.allclose(a[..., 20:], b[..., 20:])


def test_predict_regions_folds_batchnorm_and_follows_the_weights():
    from mne_brainforge import load_pretrained

    model = load_pretrained("fsaverage-brainforge", download=False)
    pos = _positions("biosemi64")
    eeg = np.random.default_rng(0).standard_normal((5, 64, model.n_times)).cumsum(-1)
    out = model.predict_regions(eeg, pos)
    fused = model._inference_net()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.as_tensor(eeg, dtype=torch.float32)
    with torch.no_grad():  # the trained network itself, BatchNorm and all
        ref = model.net.eval()(
            x / x.abs().amax(dim=(1, 2), keepdim=True), model.topomap(pos)
        )
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=1e-5 * np.abs(out).max())
    with torch.no_grad():  # weights changed in place: the next prediction follows
        model.net.head.bias += 1.0
    np.testing.assert_allclose(
        model.predict_regions(eeg, pos), out + 1.0, rtol=0, atol=1e-4
    )
