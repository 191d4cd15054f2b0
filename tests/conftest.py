import mne
import pytest

from mne_brainforge import make_fsaverage_forward
from mne_brainforge.datasets import fetch_fsaverage


@pytest.fixture(scope="session")
def subjects_dir():
    """The cached template (built by the first test that needs it)."""
    return fetch_fsaverage()


def _montage_info(name="biosemi64", sfreq=250.0):
    mon = mne.channels.make_standard_montage(name)
    info = mne.create_info(mon.ch_names, sfreq, "eeg")
    info.set_montage(mon)
    return info


@pytest.fixture(scope="session")
def info64():
    return _montage_info("biosemi64")


@pytest.fixture
def montage_info():
    """Factory: an EEG Info with a standard montage."""
    return _montage_info


@pytest.fixture(scope="session")
def fwd64(subjects_dir, info64):
    return make_fsaverage_forward(info64, verbose="error")
