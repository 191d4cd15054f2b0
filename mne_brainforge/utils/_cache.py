"""Build-once, process-safe directory cache.

A cached directory is built in a private temporary sibling, sealed with a
manifest (size and SHA-256 of every file) written last, then moved into place
with an atomic rename, all under an inter-process file lock. A reader that finds
the directory verifies the manifest; a directory we built whose manifest is
missing or does not match (a killed build from an older layout, a truncated or
edited file) is discarded and rebuilt, never loaded. A directory that we did not
build (no marker) is never touched.
"""

import json
import os
import shutil
import uuid
from pathlib import Path

from filelock import FileLock
from mne.utils import logger

from ._io import atomic_path, atomic_write_text, file_sha256

MARKER = ".mne-brainforge"
MANIFEST = "manifest.json"


def _list_files(root):
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, MARKER)
    )


def write_manifest(root, recipe):
    """Seal a finished build: record every file's size and hash, then the recipe."""
    root = Path(root)
    files = {
        rel: {"size": (root / rel).stat().st_size, "sha256": file_sha256(root / rel)}
        for rel in _list_files(root)
    }
    atomic_write_text(
        root / MANIFEST, json.dumps({"recipe": recipe, "files": files}, indent=1)
    )


def check_manifest(root, recipe):
    """Return None if ``root`` is a complete build of ``recipe``, else the reason."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return "its manifest is missing or unreadable (interrupted build?)"
    if manifest.get("recipe") != recipe:
        return "it was built by another version of the recipe"
    for rel, meta in manifest["files"].items():
        path = root / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != meta["size"] or file_sha256(path) != meta["sha256"]:
            return f"{rel} is corrupt (size or checksum mismatch)"
    return None


def is_ours(root):
    """Whether ``root`` was created by this cache (carries our marker)."""
    return (Path(root) / MARKER).is_file()


def build_cached_dir(target, recipe, build):
    """Return ``target``, building it with ``build(tmp_dir)`` if needed.

    Parameters
    ----------
    target : Path
        The directory to provide.
    recipe : dict
        JSON-serialisable description of what is built; a change rebuilds.
    build : callable
        ``build(path)`` writes the content into the empty directory ``path``, which
        has the same name as ``target`` (so a FreeSurfer subject can be built in
        place, with ``path.parent`` as its subjects_dir).

    Returns
    -------
    target : Path
        The verified directory.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if target.exists():
            if not is_ours(target):
                raise FileExistsError(
                    f"{target} exists but was not built by mne-brainforge (no "
                    f"{MARKER} marker); it is left untouched. Pass another "
                    "subjects_dir, or move that folder away."
                )
            reason = check_manifest(target, recipe)
            if reason is None:
                return target
            logger.info(f"Rebuilding {target}: {reason}.")
            trash = target.with_name(f".{target.name}.trash-{uuid.uuid4().hex}")
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
        # leftovers of builds killed before their rename
        for stale in target.parent.glob(f".{target.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp_parent = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex}")
        tmp = tmp_parent / target.name
        tmp.mkdir(parents=True)
        try:
            (tmp / MARKER).write_text("built by mne-brainforge\n")
            build(tmp)
            write_manifest(tmp, recipe)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp_parent, ignore_errors=True)
    return target


def cached_file(path, write):
    """Return ``path``, creating it with ``write(tmp_path)`` atomically if absent.

    For derived files added to a sealed directory after its build (e.g. BEM
    solutions for other conductivities): written to a temporary name and renamed,
    under a lock, so a reader never sees a partial file.
    """
    path = Path(path)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        if not path.is_file():
            with atomic_path(path) as tmp:
                write(tmp)
    return path
