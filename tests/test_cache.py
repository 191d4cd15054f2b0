"""The build-once cache: concurrency, interrupted builds, corruption."""

import json
import multiprocessing as mp
import time

import pytest

from mne_brainforge.utils._cache import MANIFEST, build_cached_dir, check_manifest

RECIPE = {"name": "test", "revision": 1}


def _slow_build(path, log=None):
    (path / "sub").mkdir()
    for i in range(3):
        (path / "sub" / f"part{i}.bin").write_bytes(bytes(range(256)) * 100)
        time.sleep(0.2)
    if log is not None:
        with open(log, "a") as fid:
            fid.write("built\n")


def _build_in_process(target, log):
    build_cached_dir(target, RECIPE, lambda p: _slow_build(p, log))


def test_build_once_then_reuse(tmp_path):
    calls = []
    target = tmp_path / "thing"
    build = lambda p: (calls.append(1), _slow_build(p))  # noqa: E731
    assert build_cached_dir(target, RECIPE, build) == target
    assert build_cached_dir(target, RECIPE, build) == target
    assert len(calls) == 1
    assert check_manifest(target, RECIPE) is None
    assert len(json.loads((target / MANIFEST).read_text())["files"]) == 3


def test_concurrent_processes_build_once(tmp_path):
    target, log = tmp_path / "thing", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_build_in_process, args=(target, log)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert log.read_text().count("built") == 1
    assert check_manifest(target, RECIPE) is None
    assert not list(tmp_path.glob(".thing.partial-*"))


def test_killed_build_leaves_nothing_loadable(tmp_path):
    target = tmp_path / "thing"

    def dies(path):
        _slow_build(path)
        raise KeyboardInterrupt  # as if killed before sealing

    with pytest.raises(KeyboardInterrupt):
        build_cached_dir(target, RECIPE, dies)
    assert not target.exists()
    # a hard kill (no cleanup) leaves a partial folder: it is removed and rebuilt
    stale = tmp_path / ".thing.partial-deadbeef" / "thing"
    stale.mkdir(parents=True)
    build_cached_dir(target, RECIPE, _slow_build)
    assert not stale.exists()
    assert check_manifest(target, RECIPE) is None


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest", "recipe"])
def test_damaged_cache_is_rebuilt(tmp_path, damage):
    target = tmp_path / "thing"
    build_cached_dir(target, RECIPE, _slow_build)
    part = target / "sub" / "part1.bin"
    recipe = RECIPE
    if damage == "truncate":
        part.write_bytes(part.read_bytes()[:-10])
    elif damage == "delete":
        part.unlink()
    elif damage == "manifest":
        (target / MANIFEST).unlink()
    else:
        recipe = {**RECIPE, "revision": 2}
    assert check_manifest(target, recipe) is not None
    build_cached_dir(target, recipe, _slow_build)
    assert check_manifest(target, recipe) is None
    assert part.stat().st_size == 25600


def test_foreign_folder_is_never_touched(tmp_path):
    target = tmp_path / "thing"
    target.mkdir()
    (target / "precious.txt").write_text("a real FreeSurfer subject")
    with pytest.raises(FileExistsError, match="not built by mne-brainforge"):
        build_cached_dir(target, RECIPE, _slow_build)
    assert (target / "precious.txt").read_text() == "a real FreeSurfer subject"
