"""Pretrained weights: the registry of released model files and their download.

Each released model file has an immutable :class:`WeightsEntry` (file name, SHA-256,
size and metadata) in the JSON registry shipped with the package
(``mne_brainforge/weights/registry.json``). :func:`~mne_brainforge.fetch_weights`
finds or downloads the file and checks it against the registered hash;
:func:`~mne_brainforge.load_pretrained` also loads it. See ``weights/README.md``
for how to add a release.
"""

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import mne
from mne.utils import logger, sizeof_fmt, verbose

from ..utils import atomic_write_text, file_sha256, get_data_path

#: Name of the default pretrained model.
DEFAULT_WEIGHTS = "fsaverage-brainforge"
#: Where released files are downloaded from: ``<BASE_URL><release>/<filename>``, a
#: GitHub release per weights version, so a retrained model never replaces the file an
#: older install pinned the hash of. The config key / environment variable
#: ``MNE_BRAINFORGE_WEIGHTS_URL`` replaces the base (a mirror with the same layout).
BASE_URL = "https://github.com/mne-tools/mne-brainforge/releases/download/"
#: Config key / environment variable that, set to ``true``, makes
#: :func:`~mne_brainforge.fetch_weights` use the ``weights/`` folder of a source
#: checkout (never used otherwise).
CHECKOUT_KEY = "MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT"
#: The registry shipped with the package.
REGISTRY_PATH = Path(__file__).with_name("registry.json")

_TIMEOUT = 60  # s without data before a download is abandoned


@dataclass(frozen=True)
class WeightsEntry:
    """A released model file (an immutable registry entry).

    Parameters
    ----------
    name : str
        Name of the weights (the registry key), e.g. ``'fsaverage-brainforge'``.
    filename : str
        File name in the release and in the cache.
    release : str
        The release (tag) that publishes the file; part of its URL.
    sha256 : str
        SHA-256 of the file (hex).
    size : int
        File size (bytes).
    meta : dict
        What the model was trained for and how: source space, ``n_regions``,
        ``sfreq``, ``window`` (s), montage range, training command, wall time and
        hardware, validation metrics, license, ... (read-only).

    See Also
    --------
    get_weights_entry, register_weights

    Examples
    --------
    >>> from mne_brainforge.weights import get_weights_entry
    >>> entry = get_weights_entry("fsaverage-brainforge")
    >>> entry.filename
    'fsaverage-brainforge.pt'
    >>> entry.meta["sfreq"], entry.meta["n_regions"]
    (100.0, 500)
    """

    name: str
    filename: str
    release: str
    sha256: str
    size: int
    meta: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def url(self):
        """Download URL (honours ``MNE_BRAINFORGE_WEIGHTS_URL``).

        Examples
        --------
        >>> from mne_brainforge.weights import get_weights_entry
        >>> get_weights_entry("fsaverage-brainforge").url
        'https://github.com/mne-tools/mne-brainforge/releases/download/weights-v0.1.0/fsaverage-brainforge.pt'
        """
        return f"{_base_url()}{self.release}/{self.filename}"

    def __repr__(self):
        lines = [
            f"<WeightsEntry {self.name!r} | {self.filename} ({self.release}), "
            f"{sizeof_fmt(self.size)}, "
            f"sha256 {self.sha256[:12]}...>"
        ]
        lines += [f"  {key}: {value}" for key, value in self.meta.items()]
        return "\n".join(lines)


def _read_registry(registry=None):
    registry = Path(registry if registry is not None else REGISTRY_PATH)
    return json.loads(registry.read_text()) if registry.is_file() else {}


def list_weights():
    """List the names of the registered pretrained weights.

    Returns
    -------
    names : list of str
        Names accepted by :func:`~mne_brainforge.fetch_weights` and
        :func:`~mne_brainforge.load_pretrained`.

    See Also
    --------
    mne_brainforge.weights.get_weights_entry

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> bf.list_weights()
    ['fsaverage-brainforge']
    """
    return sorted(_read_registry())


def get_weights_entry(name=DEFAULT_WEIGHTS):
    """Get the registry entry of pretrained weights.

    Parameters
    ----------
    name : str
        Name of the weights (see :func:`~mne_brainforge.list_weights`).

    Returns
    -------
    entry : WeightsEntry
        File name, SHA-256, size and metadata of the released file.

    Examples
    --------
    >>> from mne_brainforge.weights import get_weights_entry
    >>> entry = get_weights_entry("fsaverage-brainforge")
    >>> entry.meta["window"]  # s
    1.0
    """
    registry = _read_registry()
    if name not in registry:
        available = ", ".join(map(repr, sorted(registry))) or "none yet"
        raise ValueError(f"Unknown weights {name!r}; available: {available}.")
    return WeightsEntry(name=name, **registry[name])


def _base_url():
    url = mne.get_config("MNE_BRAINFORGE_WEIGHTS_URL") or BASE_URL
    return url if url.endswith("/") else url + "/"


def _cache_dir():
    path = mne.get_config("MNE_BRAINFORGE_WEIGHTS_PATH")
    return Path(path).expanduser() if path else get_data_path() / "weights"


def _repo_weights_dir():
    """The ``weights/`` folder of a source checkout (or editable install)."""
    return Path(__file__).resolve().parents[2] / "weights"


def _use_checkout():
    return str(mne.get_config(CHECKOUT_KEY, "false")).lower() in ("true", "1", "yes")


def _corrupt_error(entry, what, detail, advice):
    return ValueError(
        f"{what} does not match the registered SHA-256 of weights {entry.name!r} "
        f"({detail}): it is corrupt, truncated or has been tampered with, and is "
        f"refused. {advice}"
    )


def _check(fname, entry, advice):
    got = file_sha256(fname)
    if got != entry.sha256:
        raise _corrupt_error(
            entry, fname, f"expected {entry.sha256}, got {got}", advice
        )
    return fname


def _missing_message(entry, cache_dir, reason):
    return (
        f"{reason} Download {entry.url} and put it in {cache_dir} (or pass path=<the "
        "file>); the cache folder is set by the config key / environment variable "
        "MNE_BRAINFORGE_WEIGHTS_PATH."
    )


@verbose
def fetch_weights(name=DEFAULT_WEIGHTS, *, path=None, download=True, verbose=None):
    """Find or download a pretrained model file, checked against its registered hash.

    The file is looked for, in order:

    1. ``path`` if it is a file (never any network access);
    2. only if the config key / environment variable
       ``MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT`` is ``true``: the ``weights/`` folder
       of a source checkout of mne-brainforge (for developers and offline demos;
       never used silently);
    3. the cache folder: ``path`` if it is a folder, else the config key /
       environment variable ``MNE_BRAINFORGE_WEIGHTS_PATH``, else
       ``<data path>/weights`` (see :func:`mne_brainforge.datasets.get_data_path`);
    4. downloaded into the cache folder (if ``download``) by :mod:`pooch` from
       the entry's release, ``<base URL><release>/<filename>``, where the base URL
       is the config key / environment variable ``MNE_BRAINFORGE_WEIGHTS_URL``,
       else :data:`BASE_URL`.

    Every file is checked against the registry's SHA-256 and a file that differs is
    refused (never returned) with an error. A corrupt file in the cache is
    downloaded again if ``download`` is True; a download that does not match is
    not kept.

    Parameters
    ----------
    name : str
        Name of the weights (see :func:`~mne_brainforge.list_weights`).
    path : path-like | None
        A model file to use (checked, no network), or a folder to use as the cache.
    download : bool
        Download the file if it is not found; if False, raise an error instead.
    %(verbose)s

    Returns
    -------
    fname : Path
        The verified model file.

    See Also
    --------
    load_pretrained, list_weights

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> fname = bf.fetch_weights("fsaverage-brainforge")
    >>> fname.name
    'fsaverage-brainforge.pt'

    Offline, with a file downloaded by hand (checked, no network access):

    >>> fname = bf.fetch_weights(path="~/Downloads/fsaverage-brainforge.pt")
    """
    entry = get_weights_entry(name)
    cache_dir = _cache_dir()
    if path is not None:
        path = Path(path).expanduser()
        if path.is_file():
            logger.info(f"Using weights {name!r} from {path}")
            return _check(path, entry, f"Pass the released file ({entry.url}).")
        if path.suffix == Path(entry.filename).suffix:
            raise FileNotFoundError(f"Weights file {path} does not exist.")
        cache_dir = path
    if _use_checkout():
        fname = _repo_weights_dir() / entry.filename
        if fname.is_file():
            logger.info(f"Using weights {name!r} from the source checkout: {fname}")
            advice = "Restore it (git checkout / git lfs pull) or delete it."
            return _check(fname, entry, advice)
        logger.info(f"{CHECKOUT_KEY} is set but {fname} does not exist")
    fname = cache_dir / entry.filename
    if fname.is_file():
        got = file_sha256(fname)
        if got == entry.sha256:
            logger.info(f"Using cached weights {name!r}: {fname}")
            return fname
        if not download:
            raise _corrupt_error(
                entry,
                fname,
                f"expected {entry.sha256}, got {got}",
                f"Delete it and call fetch_weights again with download=True, or "
                f"download {entry.url} into {cache_dir}.",
            )
        logger.warning(
            f"Cached {fname} is corrupt (SHA-256 mismatch); downloading it again."
        )
    elif not download:
        reason = f"Weights {name!r} not found and download=False."
        raise FileNotFoundError(_missing_message(entry, cache_dir, reason))
    return _download(entry, cache_dir)


def _download(entry, cache_dir):
    """Fetch with a pooch registry of the entry (pooch checks the hash, keeps no
    partial or mismatching file)."""
    import pooch

    progressbar = (
        importlib.util.find_spec("tqdm") is not None
        and logger.getEffectiveLevel() <= logging.INFO
    )
    fetcher = pooch.create(
        path=cache_dir,
        base_url=_base_url(),
        registry={entry.filename: f"sha256:{entry.sha256}"},
        urls={entry.filename: entry.url},
    )
    logger.info(f"Downloading weights {entry.name!r} from {entry.url} to {cache_dir}")
    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=_TIMEOUT)
    try:
        fname = fetcher.fetch(entry.filename, downloader=downloader)
    except ValueError as err:  # hash mismatch: pooch deletes the download
        (Path(cache_dir) / entry.filename).unlink(missing_ok=True)
        raise _corrupt_error(
            entry,
            f"The file downloaded from {entry.url}",
            err,
            f"Nothing was kept in {cache_dir}. Check MNE_BRAINFORGE_WEIGHTS_URL, or "
            "upgrade mne-brainforge if the release changed.",
        ) from None
    except OSError as err:  # offline, HTTP error, ... (requests' errors are OSErrors)
        reason = f"Could not download {entry.url} (no network? {err})."
        raise OSError(_missing_message(entry, cache_dir, reason)) from None
    return Path(fname)


@verbose
def load_pretrained(
    name=DEFAULT_WEIGHTS, *, path=None, download=True, device="cpu", verbose=None
):
    """Load a pretrained BrainForge model (see :func:`~mne_brainforge.fetch_weights`).

    Parameters
    ----------
    name : str
        Name of the weights (see :func:`~mne_brainforge.list_weights`).
    path : path-like | None
        A model file to use, or a folder to use as the cache (see
        :func:`~mne_brainforge.fetch_weights`).
    download : bool
        Download the file if it is not found.
    device : str
        Torch device to put the network on.
    %(verbose)s

    Returns
    -------
    model : BrainForgeModel
        The pretrained model.

    See Also
    --------
    fetch_weights, mne_brainforge.nn.BrainForgeModel.load

    Notes
    -----
    See the tutorial :ref:`sphx_glr_auto_tutorials_00_quickstart.py`.

    Examples
    --------
    >>> import mne_brainforge as bf
    >>> model = bf.load_pretrained()
    >>> model.sfreq, model.n_times
    (100.0, 100)
    >>> labels = model.parcellation.to_labels()  # the 500 regions, as mne.Label
    """
    from ..nn import BrainForgeModel

    return BrainForgeModel.load(
        fetch_weights(name, path=path, download=download), device=device
    )


def make_weights_entry(fname, name, *, release, **meta):
    """Make a registry entry for a model file.

    Parameters
    ----------
    fname : path-like
        A model file saved by :meth:`BrainForgeModel.save
        <mne_brainforge.nn.BrainForgeModel.save>`.
    name : str
        Name of the weights.
    release : str
        The release tag that publishes the file (e.g. ``'weights-v0.2.0'``).
    **meta
        Metadata (training command, hardware, validation metrics, license, ...);
        they override what is read from the model (``subject``, ``n_regions``,
        ``n_sources``, ``sfreq``, ``n_times``, ``window``, ``training``).

    Returns
    -------
    entry : dict
        The fields of :class:`WeightsEntry` (JSON-able).

    See Also
    --------
    register_weights

    Examples
    --------
    >>> from mne_brainforge.weights import make_weights_entry
    >>> entry = make_weights_entry(
    ...     "my-model.pt", "my-model", release="weights-v0.2.0", license="BSD-3-Clause"
    ... )
    >>> sorted(entry)
    ['filename', 'meta', 'name', 'release', 'sha256', 'size']
    """
    from ..nn import BrainForgeModel

    fname = Path(fname)
    model = BrainForgeModel.load(fname)
    training = model.config.get("training", {})
    auto = dict(
        subject=model.config.get("subject"),
        n_regions=model.parcellation.n_regions,
        n_sources=model.parcellation.n_sources,
        sfreq=model.sfreq,
        n_times=model.n_times,
        window=model.n_times / model.sfreq,
        training={
            k: training[k]
            for k in ("steps_done", "wall_time_s", "device", "n_channels")
            if k in training
        },
    )
    return dict(
        name=name,
        filename=fname.name,
        release=release,
        sha256=file_sha256(fname),
        size=fname.stat().st_size,
        meta=auto | meta,
    )


def register_weights(fname, name, *, release, registry=None, **meta):
    """Add or update a model file's entry in the JSON registry.

    Parameters
    ----------
    fname : path-like
        The model file (see :func:`make_weights_entry`).
    name : str
        Name of the weights.
    release : str
        The release tag that publishes the file (see :func:`make_weights_entry`).
    registry : path-like | None
        The registry file; None for the one shipped with the package.
    **meta
        Metadata, see :func:`make_weights_entry`.

    Returns
    -------
    entry : WeightsEntry
        The new entry.

    Notes
    -----
    See ``weights/README.md`` for how to add a release.

    Examples
    --------
    Register a model in a registry file of one's own (the default, ``registry=None``,
    writes to the registry shipped with the package):

    >>> from mne_brainforge.weights import register_weights
    >>> entry = register_weights(
    ...     "my-model.pt", "my-model", release="weights-v0.2.0", registry="registry.json"
    ... )
    >>> entry.name
    'my-model'
    """
    registry = Path(registry if registry is not None else REGISTRY_PATH)
    entries = _read_registry(registry)
    entry = make_weights_entry(fname, name, release=release, **meta)
    entries[entry.pop("name")] = entry
    atomic_write_text(registry, json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return WeightsEntry(name=name, **entry)
