import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mne_brainforge import make_fsaverage_forward
from mne_brainforge.datasets import fetch_fsaverage
from mne_brainforge.head import make_montage_info
from mne_brainforge.viz import ensure_3d_display
from mne_brainforge.weights import fetch_weights, get_weights_entry, list_weights

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def render_3d():
    """Whether MNE's 3D viewer can draw here.

    Required under the test command (BRAINFORGE_REQUIRE_3D=1, set where the
    OpenGL check passes): a failure to set it up then fails the render tests.
    Elsewhere it is tried only where there is a display.
    """
    if os.environ.get("BRAINFORGE_REQUIRE_3D") == "1":
        ensure_3d_display()
        return True
    if not os.environ.get("DISPLAY"):
        return False
    try:
        ensure_3d_display()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def needs_3d(render_3d):
    """Skip a render test where MNE's 3D viewer cannot draw."""
    if not render_3d:
        pytest.skip("no 3D rendering here (no display, or no OpenGL context on it)")


@pytest.fixture(scope="session", autouse=True)
def weights_cache(tmp_path_factory):
    """A weights cache holding the released files, filled the way a user would.

    The files are verified with ``fetch_weights(path=<local file>)`` and put in a
    temporary cache that ``MNE_BRAINFORGE_WEIGHTS_PATH`` points to (subprocesses
    such as the tutorials inherit it), so nothing loads weights by repository path
    and nothing downloads.
    """
    cache = tmp_path_factory.mktemp("weights-cache")
    for name in list_weights():
        local = REPO / "weights" / get_weights_entry(name).filename
        if local.is_file():
            shutil.copy(fetch_weights(name, path=local, verbose="error"), cache)
    old = os.environ.get("MNE_BRAINFORGE_WEIGHTS_PATH")
    os.environ["MNE_BRAINFORGE_WEIGHTS_PATH"] = str(cache)
    yield cache
    if old is None:
        del os.environ["MNE_BRAINFORGE_WEIGHTS_PATH"]
    else:
        os.environ["MNE_BRAINFORGE_WEIGHTS_PATH"] = old


@pytest.fixture(scope="session")
def subjects_dir():
    """The cached template (built by the first test that needs it)."""
    return fetch_fsaverage()


@pytest.fixture(scope="session")
def info64():
    return make_montage_info("biosemi64")


@pytest.fixture
def montage_info():
    """Factory: an EEG Info with a standard montage."""
    return make_montage_info


@pytest.fixture(scope="session")
def fwd64(subjects_dir, info64):
    return make_fsaverage_forward(info64, verbose="error")


class _SpikeLibrary:
    """Stand-in waveform library (no TVB run): biphasic spikes of random widths."""

    def __init__(self, sfreq=500.0, n=40, seed=0):
        rng = np.random.default_rng(seed)
        t = np.arange(-0.1, 0.2, 1 / sfreq)
        widths = rng.uniform(0.01, 0.03, n)[:, None]
        self.spikes = -np.exp(-(t**2) / (2 * widths**2)) + 0.3 * np.exp(
            -((t - 3 * widths) ** 2) / (2 * (2 * widths) ** 2)
        )
        self.background = rng.standard_normal((8, int(4 * sfreq)))
        self.sfreq = sfreq


@pytest.fixture(scope="session")
def spike_library():
    return _SpikeLibrary()


@pytest.fixture(scope="session")
def regime_waveforms():
    """The TVB Jansen-Rit regimes (rhythmic, alpha), 2.5 s each (a real TVB run)."""
    from mne_brainforge.simulation import simulate_regimes

    return simulate_regimes(duration=3.5, sfreq=500.0)


@pytest.fixture(scope="session")
def fwd32(subjects_dir):
    info = make_montage_info("biosemi32")
    return make_fsaverage_forward(info, verbose="error")


@pytest.fixture(scope="session")
def tiny_model(fwd32, spike_library):
    """A BrainForge model trained for 4 steps (its prior is noise: the tests check
    that the estimate does not depend on it being good)."""
    from mne_brainforge.training import train_model

    return train_model(
        fwd32,
        library=spike_library,
        n_regions=60,
        steps=4,
        batch_size=4,
        val_every=4,
        val_samples=2,
        net_kwargs=dict(d_model=32),
        num_workers=0,
        verbose=False,
    )


@pytest.fixture(scope="session")
def small_engine(fwd32, spike_library, regime_waveforms):
    """Factory: a batched generator on the biosemi32 template head (one head model)."""
    from mne_brainforge.head import HeadModelFamily
    from mne_brainforge.simulation import BatchedEEGGenerator, make_waveform_bank

    family = HeadModelFamily([fwd32])
    bank = make_waveform_bank(
        spike_library,
        sfreq=100.0,
        n_times=100,
        n_per_family=20,
        regimes=regime_waveforms,
    )

    def make(**kwargs):
        return BatchedEEGGenerator(
            family, bank, channel_sets=[family.channel_set("biosemi32")], **kwargs
        )

    return make
