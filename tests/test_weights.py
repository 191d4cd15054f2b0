"""The pretrained-weights registry and fetch_weights: download, cache, hashes, offline."""

import dataclasses
import functools
import hashlib
import json
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import mne
import numpy as np
import pytest
import torch
from mne.utils import catch_logging
from scipy import sparse

import mne_brainforge
from mne_brainforge import weights
from mne_brainforge.head.parcellation import Parcellation
from mne_brainforge.nn import BrainForgeModel, BrainForgeNet
from mne_brainforge.weights import (
    fetch_weights,
    get_weights_entry,
    list_weights,
    load_pretrained,
    register_weights,
)

NAME = "tiny-test"
RELEASE = "weights-v9.9"
NET = dict(
    size=8, d_model=16, cnn_channels=(4,), n_heads=2, n_layers=1, dim_feedforward=32
)


def _tiny_model():
    """4 regions on 2 x 6 sources in a chain (no forward model, no training)."""
    rng = np.random.default_rng(0)
    n = 12
    edges = np.array(
        [(i, i + 1) for i in range(n - 1) if i != 5]
    )  # no edge across hemis
    graph = sparse.coo_matrix((np.full(len(edges), 0.005), tuple(edges.T)), (n, n))
    parcellation = Parcellation(
        np.repeat(np.arange(4), 3),
        [np.arange(6), np.arange(6)],
        rng.normal(0, 0.05, (n, 3)),
        graph + graph.T,
        np.full(n, 1e-5),
        subject="tiny",
    )
    torch.manual_seed(0)
    training = dict(steps_done=3, wall_time_s=1.5, device="cpu", n_channels=32)
    config = dict(
        sfreq=100.0,
        n_times=20,
        subject="tiny",
        net=NET,
        training=training,
        topomap=dict(size=8, method="bilinear"),
    )
    return BrainForgeModel(BrainForgeNet(4, **NET).eval(), parcellation, config)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    fname = tmp_path_factory.mktemp("model") / f"{NAME}.pt"
    _tiny_model().save(fname)
    return fname


def _same_outputs(model, other):
    mon = mne.channels.make_standard_montage("biosemi32")
    ch_pos = np.array(list(mon.get_positions()["ch_pos"].values()))
    eeg = np.random.default_rng(1).standard_normal((2, 32, 20))
    a, b = model.predict_regions(eeg, ch_pos), other.predict_regions(eeg, ch_pos)
    assert a.shape == (2, 4, 20)
    np.testing.assert_array_equal(a, b)


def _tamper(fname):
    data = bytearray(fname.read_bytes())
    data[len(data) // 2] ^= 0xFF
    fname.write_bytes(bytes(data))


@pytest.fixture
def registry(tmp_path, monkeypatch, model_file):
    """A temporary registry holding the tiny model; no real weights/ folder or cache."""
    monkeypatch.setattr(weights, "REGISTRY_PATH", tmp_path / "registry.json")
    monkeypatch.setattr(weights, "_repo_weights_dir", lambda: tmp_path / "repo_weights")
    monkeypatch.setenv("MNE_BRAINFORGE_WEIGHTS_PATH", str(tmp_path / "cache"))
    return register_weights(model_file, NAME, release=RELEASE, license="BSD-3-Clause")


class _Server:
    """Files of a folder served over HTTP on 127.0.0.1, counting the requests."""

    def __init__(self, directory):
        self.dir, self.requests = directory, []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/releases/"
        self.release_dir = directory / "releases" / RELEASE
        self.release_dir.mkdir(parents=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path, monkeypatch, registry, model_file):
    """Serves the tiny model at MNE_BRAINFORGE_WEIGHTS_URL."""
    (tmp_path / "www").mkdir()
    srv = _Server(tmp_path / "www")
    shutil.copy(model_file, srv.release_dir / registry.filename)
    monkeypatch.setenv("MNE_BRAINFORGE_WEIGHTS_URL", srv.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield srv
    if srv.thread.is_alive():
        srv.stop()


def test_registry(registry, model_file, tmp_path, monkeypatch):
    assert weights.DEFAULT_WEIGHTS == "fsaverage-brainforge"
    assert isinstance(json.loads(weights.REGISTRY_PATH.read_text()), dict)
    assert list_weights() == mne_brainforge.list_weights() == [NAME]
    entry = get_weights_entry(NAME)
    assert entry == registry
    assert entry.filename == model_file.name
    assert entry.sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert entry.size == model_file.stat().st_size
    meta = entry.meta
    assert (meta["subject"], meta["n_regions"], meta["n_sources"]) == ("tiny", 4, 12)
    assert (meta["sfreq"], meta["n_times"], meta["window"]) == (100.0, 20, 0.2)
    assert meta["training"] == dict(
        steps_done=3, wall_time_s=1.5, device="cpu", n_channels=32
    )
    assert meta["license"] == "BSD-3-Clause"
    text = repr(entry)
    assert (
        text.startswith(f"<WeightsEntry '{NAME}' | {NAME}.pt")
        and "n_regions: 4" in text
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.sha256 = "0" * 64
    with pytest.raises(TypeError):
        entry.meta["n_regions"] = 5
    # updating an entry keeps the others; the JSON round-trips
    register_weights(model_file, "other", release=RELEASE, license="CC-BY-4.0")
    register_weights(model_file, NAME, release="weights-v10", license="MIT")
    assert list_weights() == ["other", NAME]
    assert get_weights_entry(NAME).meta["license"] == "MIT"
    with pytest.raises(
        ValueError, match=f"Unknown weights 'nope'; available: 'other', '{NAME}'"
    ):
        fetch_weights("nope")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    monkeypatch.setattr(weights, "REGISTRY_PATH", empty)
    with pytest.raises(ValueError, match="available: none yet"):
        get_weights_entry()


def test_shipped_registry():
    entries = json.loads(weights.REGISTRY_PATH.read_text())
    assert isinstance(entries, dict)
    for name in entries:
        entry = get_weights_entry(name)
        assert len(entry.sha256) == 64 and entry.size > 0


def test_download_cache_and_load(server, registry, model_file, tmp_path):
    cache = tmp_path / "cache"
    with catch_logging(verbose=True) as log:
        fname = fetch_weights(NAME)
    assert (
        fname == cache / registry.filename
        and fname.read_bytes() == model_file.read_bytes()
    )
    assert server.requests == [f"/releases/{RELEASE}/{registry.filename}"]
    assert registry.url == f"{server.url}{RELEASE}/{registry.filename}"
    log = log.getvalue()
    assert "Downloading weights" in log and server.url in log
    model = load_pretrained(NAME)
    assert isinstance(model, BrainForgeModel)
    _same_outputs(model, BrainForgeModel.load(model_file))
    # the cache is reused: no new request
    with catch_logging(verbose=True) as log:
        assert fetch_weights(NAME) == fname
    assert "cached" in log.getvalue()
    assert len(server.requests) == 1
    # path= a folder: used as the cache
    other = tmp_path / "other_cache"
    assert fetch_weights(NAME, path=other) == other / registry.filename
    assert len(server.requests) == 2 and fetch_weights(NAME, path=other, download=False)


def test_tampered_download_refused(server, registry, tmp_path):
    _tamper(server.release_dir / registry.filename)
    with pytest.raises(ValueError, match="tampered with, and is refused") as err:
        fetch_weights(NAME)
    assert server.url in str(err.value) and "Nothing was kept" in str(err.value)
    assert not list((tmp_path / "cache").iterdir())  # no file, no leftover temporary
    with pytest.raises(ValueError, match="refused"):
        load_pretrained(NAME)


def test_tampered_cache(server, registry, model_file, tmp_path):
    fname = fetch_weights(NAME)
    _tamper(fname)
    # download=False: refused, with what to do
    with pytest.raises(ValueError, match="refused. Delete it") as err:
        fetch_weights(NAME, download=False)
    assert str(fname) in str(err.value) and server.url in str(err.value)
    # download=True: the corrupt file is replaced by a fresh verified download
    assert fetch_weights(NAME) == fname
    assert fname.read_bytes() == model_file.read_bytes()
    assert len(server.requests) == 2
    # and if the server is tampered too, nothing is left
    _tamper(fname)
    _tamper(server.release_dir / registry.filename)
    with pytest.raises(ValueError, match="refused"):
        fetch_weights(NAME)
    assert not fname.exists()


def test_local_path_and_repo_folder_offline(
    server, registry, model_file, tmp_path, monkeypatch
):
    server.stop()
    assert fetch_weights(NAME, path=model_file) == model_file
    _same_outputs(
        load_pretrained(NAME, path=model_file), BrainForgeModel.load(model_file)
    )
    bad = tmp_path / "bad.pt"
    shutil.copy(model_file, bad)
    _tamper(bad)
    with pytest.raises(ValueError, match="refused"):
        fetch_weights(NAME, path=bad)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        fetch_weights(NAME, path=tmp_path / "missing.pt")
    # the weights/ folder of a source checkout: only used when asked for
    repo = tmp_path / "repo_weights"
    repo.mkdir()
    shutil.copy(model_file, repo / registry.filename)
    with pytest.raises(OSError, match="Could not download"):
        fetch_weights(NAME)
    monkeypatch.setenv(weights.CHECKOUT_KEY, "true")
    with catch_logging(verbose=True) as log:
        assert fetch_weights(NAME) == repo / registry.filename
    assert "source checkout" in log.getvalue()
    _tamper(repo / registry.filename)
    with pytest.raises(ValueError, match="refused. Restore it"):
        fetch_weights(NAME)
    assert not server.requests


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("how", ["stopped", "unreachable"])
def test_offline_nothing_cached(server, registry, tmp_path, monkeypatch, how):
    if how == "stopped":
        server.stop()
        url = server.url
    else:
        url = f"http://127.0.0.1:{_closed_port()}/weights/"
        monkeypatch.setenv("MNE_BRAINFORGE_WEIGHTS_URL", url)
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="Could not download") as err:
        fetch_weights(NAME)
    expected_url = f"{url}{RELEASE}/{registry.filename}"
    assert expected_url in str(err.value) and str(cache) in str(err.value)
    assert not (cache / registry.filename).exists()
    with pytest.raises(FileNotFoundError, match="download=False") as err:
        fetch_weights(NAME, download=False)
    assert expected_url in str(err.value) and str(cache) in str(err.value)
