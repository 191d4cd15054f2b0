"""Inputs users really have: each bad input gives a message saying what to do."""

import subprocess
import sys
import warnings

import mne
import numpy as np
import pytest
import torch

from mne_brainforge.head import check_eeg_positions
from mne_brainforge.head.template import _stage
from mne_brainforge.inverse import (
    _checks,
    apply_brainforge_inverse,
    apply_brainforge_inverse_raw,
    compare_inverse_methods,
)
from mne_brainforge.nn import BrainForgeModel
from mne_brainforge.nn.topomap import topomap_matrix
from mne_brainforge.training import train_model


def _evoked(fwd, n_times=250, sfreq=100.0, scale=1e-5, seed=0):
    """Smooth (< 30 Hz) EEG on the forward's channels, montage biosemi32."""
    info = mne.create_info(fwd["info"]["ch_names"], sfreq, "eeg")
    info.set_montage("biosemi32")
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(info.ch_names), n_times + 100))
    data = mne.filter.filter_data(data, sfreq, None, 30.0, verbose=False)[:, 50:-50]
    evoked = mne.EvokedArray(data * scale, info, tmin=0.0)
    with evoked.info._unlock():
        evoked.info["lowpass"] = 30.0
    return evoked


def _moved(inst, change):
    """Copy of ``inst`` with ``change(pos)`` applied to the EEG positions."""
    inst = inst.copy()
    with inst.info._unlock():
        for ch in inst.info["chs"]:
            ch["loc"][:3] = change(ch["loc"][:3].copy())
    return inst


# 1 ---------------------------------------------------------- coincident electrodes
def test_coincident_electrodes_are_one_site(info64):
    pos = np.array([ch["loc"][:3] for ch in info64["chs"]])
    matrix, _ = topomap_matrix(pos)
    x = np.random.default_rng(0).standard_normal(64)
    # 64 duplicated pairs (was LinAlgError: Singular matrix): same maps
    doubled, _ = topomap_matrix(np.r_[pos, pos])
    np.testing.assert_allclose(doubled @ np.r_[x, x], matrix @ x, atol=1e-12)
    # one pair 0.3 mm apart (was a silently wrong map): the pair's mean is one site
    near = np.r_[pos, pos[:1] + [3e-4, 0, 0]]
    one, _ = topomap_matrix(near)
    np.testing.assert_allclose(one @ np.r_[x, x[0]], matrix @ x, atol=5e-3)


def test_coincident_channels_warn_with_names(tiny_model, fwd32):
    evoked = _evoked(fwd32)
    with evoked.info._unlock():
        evoked.info["chs"][1]["loc"][:3] = evoked.info["chs"][0]["loc"][:3]
    with pytest.warns(RuntimeWarning, match="Fp1 = AF3"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model)


# 2 / 9 ------------------------------------------------ positions vs the forward
def test_mirrored_positions_refused(tiny_model, fwd32):
    evoked = _moved(_evoked(fwd32), lambda p: p * [-1, 1, 1])
    with pytest.raises(ValueError, match="mirrored left-right"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model)


@pytest.mark.parametrize("scale, unit", [(1e3, "millimetres"), (1e2, "centimetres")])
def test_position_units(tiny_model, fwd32, scale, unit):
    evoked = _moved(_evoked(fwd32), lambda p: p * scale)
    with pytest.raises(ValueError, match=f"look like {unit}"):
        apply_brainforge_inverse(evoked, fwd32, tiny_model)
    with pytest.raises(ValueError, match=f"look like {unit}; MNE expects metres"):
        check_eeg_positions(evoked.info)


def test_centimetres_above_ten_are_centimetres(montage_info):
    """A large head in cm (radius > 10) was reported as millimetres."""
    info = _moved(
        mne.EvokedArray(np.zeros((32, 1)), montage_info(32)), lambda p: p * 115
    )
    with pytest.raises(ValueError, match="centimetres"):
        check_eeg_positions(info.info)


def test_shifted_positions(tiny_model, fwd32):
    evoked = _evoked(fwd32)
    with pytest.warns(RuntimeWarning, match="a median 10 mm from the forward's"):
        apply_brainforge_inverse(
            _moved(evoked, lambda p: p + [0, 0.01, 0]), fwd32, tiny_model
        )
    with pytest.raises(ValueError, match="not the same montage"):
        apply_brainforge_inverse(
            _moved(evoked, lambda p: p + [0, 0.04, 0]), fwd32, tiny_model
        )


# 3 ------------------------------------------------------------- covariance channels
def test_covariance_lacking_channels(tiny_model, fwd32):
    evoked = _evoked(fwd32)
    cov = mne.make_ad_hoc_cov(mne.pick_info(evoked.info, range(20)), verbose=False)
    with pytest.raises(
        ValueError, match=r"noise_cov lacks 12 of the 32 .*: CP6, CP2, C4"
    ):
        compare_inverse_methods(evoked, fwd32, cov, methods=("dSPM",), verbose=False)


# 5 ---------------------------------------------------------------- train_model
def test_train_model_checks(fwd32, spike_library, tmp_path):
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        train_model(fwd32, library=spike_library, steps=0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        train_model(tmp_path / "x-fwd.fif", library=spike_library)
    small = mne.pick_channels_forward(
        fwd32, fwd32["info"]["ch_names"][:6], verbose=False
    )
    with pytest.raises(ValueError, match="has 6 EEG channels; .* at least 8"):
        train_model(small, library=spike_library)
    fname = tmp_path / "small-fwd.fif"
    mne.write_forward_solution(fname, small, verbose=False)
    with pytest.raises(ValueError, match="has 6 EEG channels"):  # a path is read
        train_model(str(fname), library=spike_library)


# 7 ------------------------------------------------------------- mindist > 0
def test_forward_missing_sources_says_mindist(tiny_model, fwd32):
    vertices = [s["vertno"][s["vertno"] % 7 != 0] for s in fwd32["src"]]
    stc = mne.SourceEstimate(
        np.zeros((sum(map(len, vertices)), 1)), vertices, 0, 1, subject="fsaverage"
    )
    fwd = mne.forward.restrict_forward_to_stc(fwd32, stc, on_missing="ignore")
    with pytest.raises(ValueError, match="mindist > 0.*mindist=0"):
        apply_brainforge_inverse(_evoked(fwd32), fwd, tiny_model)


# 8 ------------------------------------------------------------- template build
def test_template_build_stages_show_whatever_the_log_level(capsys):
    from tqdm import tqdm

    with mne.utils.use_log_level("warning"):
        bar = tqdm(total=2, desc="fsaverage template")
        _stage(bar, "Deriving the outer skull ...")
        bar.close()
    err = capsys.readouterr().err
    assert "fsaverage template: Deriving the outer skull" in err and "1/2" in err


# 10 ------------------------------------------------------- implausible amplitudes
def test_amplitudes(tiny_model, fwd32):
    evoked = _evoked(fwd32)
    microvolts = evoked.copy()
    microvolts.data *= 1e6  # ~10-100 "V"
    with pytest.raises(ValueError, match="look like microvolts passed as volts: scale"):
        apply_brainforge_inverse(microvolts, fwd32, tiny_model)
    hundreds = evoked.copy()
    hundreds.data *= 3e7  # hundreds of volts
    with pytest.raises(ValueError, match="scale them by 1e-6"):
        apply_brainforge_inverse(hundreds, fwd32, tiny_model)
    millivolts = evoked.copy()
    millivolts.data *= 1e4
    with pytest.warns(RuntimeWarning, match="look like millivolts"):
        apply_brainforge_inverse(millivolts, fwd32, tiny_model)


def test_railed_channel_left_out(tiny_model, fwd32):
    evoked = _evoked(fwd32)
    railed = evoked.copy()
    railed.data[5] = np.where(np.arange(railed.data.shape[1]) % 40 < 20, 5e-3, -5e-3)
    with pytest.warns(RuntimeWarning, match=r"railed EEG channel\(s\) .*: FC5"):
        stc = apply_brainforge_inverse(railed, fwd32, tiny_model)
    marked = evoked.copy()
    marked.info["bads"] = ["FC5"]
    expected = apply_brainforge_inverse(marked, fwd32, tiny_model)
    np.testing.assert_allclose(stc.data, expected.data)


# 11 ----------------------------------------------------------- what is lost
def test_information_loss_warnings(tiny_model, fwd32):
    fast = _evoked(fwd32, n_times=2048, sfreq=2048.0)
    with fast.info._unlock():
        fast.info["lowpass"] = 1024.0
    # only the network's prior is band-limited, the estimate uses the whole band:
    # said in the log, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with mne.utils.catch_logging(verbose=True) as log:
            apply_brainforge_inverse(fast, fwd32, tiny_model, n_iter=5)
    assert "prior sees the data up to 50 Hz" in log.getvalue()
    short = _evoked(fwd32, n_times=18)  # 180 ms at 100 Hz
    with pytest.warns(RuntimeWarning, match="last 180 ms.*zero-padded"):
        apply_brainforge_inverse(short, fwd32, tiny_model)
    few = _evoked(fwd32)
    few.info["bads"] = few.ch_names[:20]
    with pytest.warns(RuntimeWarning, match="12 EEG channels are used; .* on 16-32"):
        apply_brainforge_inverse(few, fwd32, tiny_model)
    with pytest.warns(RuntimeWarning, match="256 EEG channels .* Pick at most 32"):
        _checks.check_model_fit(tiny_model, 256, 100.0, 30.0, 100)


# 12 ---------------------------------------------------------- bf.viz reachable
def test_subpackages_reachable_after_import():
    code = "import mne_brainforge as bf; bf.viz.ensure_3d_display; bf.datasets.fetch_fsaverage"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# 13 -------------------------------------------------------- never weights_only=False
def test_load_never_suggests_unsafe_loading(tmp_path):
    fname = tmp_path / "model.pt"
    torch.save({"meta": "{}", "obj": mne.Annotations([0], [1], ["x"])}, fname)
    with pytest.raises(ValueError, match="Python objects besides tensors") as exc:
        BrainForgeModel.load(fname)
    assert "weights_only" not in str(exc.value)


# 14 --------------------------------------------------------- BioSemi codes
def test_biosemi_codes_under_a_1020_montage():
    names = [f"{b}{k}" for b in "AB" for k in range(1, 33)]
    info = mne.create_info(names, 256.0, "eeg")
    info.set_montage("standard_1020", on_missing="ignore")
    with pytest.warns(RuntimeWarning, match="BioSemi electrode codes"):
        with pytest.raises(ValueError):  # most have no position
            check_eeg_positions(info)
    ok = mne.create_info(
        mne.channels.make_standard_montage("biosemi128").ch_names, 256.0, "eeg"
    )
    ok.set_montage("biosemi128")
    assert _checks.check_biosemi_codes(ok) == []


# 15 ----------------------------------------------------- cropping raw estimates
def test_raw_segment_by_start_stop(tiny_model, fwd32):
    evoked = _evoked(fwd32, n_times=400)
    raw = mne.io.RawArray(evoked.data, evoked.info, verbose=False)
    stc = apply_brainforge_inverse_raw(raw, fwd32, tiny_model)
    start, stop = raw.time_as_index([1.0, 2.0])
    segment = apply_brainforge_inverse_raw(
        raw, fwd32, tiny_model, start=start, stop=stop
    )
    np.testing.assert_allclose(segment.times, raw.times[start:stop], atol=1e-9)
    # the documented alternative: form the data first, then crop
    full = stc.copy()
    full.data  # noqa: B018
    cropped = full.crop(1.0, 2.0, include_tmax=False)
    assert cropped.times.shape == (100,) and cropped.data.shape[1] == 100
