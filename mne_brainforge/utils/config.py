"""Where mne-brainforge keeps its data (MNE config keys)."""

from pathlib import Path

import mne


def get_data_path():
    """Return the folder where mne-brainforge caches its data.

    The config key (or environment variable) ``MNE_BRAINFORGE_DATA`` if set,
    else ``<MNE_DATA>/MNE-brainforge-data``, where ``MNE_DATA`` is MNE's data
    folder (default ``~/mne_data``). Set keys with :func:`mne.set_config`.

    Returns
    -------
    path : Path
        The data folder (not created by this function).

    See Also
    --------
    mne_brainforge.datasets.fetch_fsaverage, mne_brainforge.fetch_weights

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> bf.datasets.get_data_path()  # with MNE_DATA and MNE_BRAINFORGE_DATA unset
    PosixPath('/home/user/mne_data/MNE-brainforge-data')
    """
    path = mne.get_config("MNE_BRAINFORGE_DATA")
    if path is None:
        mne_data = mne.get_config("MNE_DATA", str(Path("~") / "mne_data"))
        path = Path(mne_data) / "MNE-brainforge-data"
    return Path(path).expanduser()
