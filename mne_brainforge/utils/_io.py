"""File helpers used everywhere: hashes and atomic writes."""

import hashlib
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pooch


def file_sha256(fname):
    """SHA-256 hex digest of a file (pooch's streaming hash)."""
    return pooch.file_hash(str(fname), alg="sha256")


def array_sha256(arr):
    """SHA-256 hex digest of an array's dtype, shape and bytes."""
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


@contextmanager
def atomic_path(fname):
    """Yield a temporary sibling of ``fname``, renamed onto it if the block succeeds.

    A reader never sees a partial file: the write goes to a unique hidden name (same suffix) in
    the same folder (same file system, so :func:`os.replace` is atomic), which is
    removed if the block raises.
    """
    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    tmp = fname.with_name(f".{uuid.uuid4().hex[:12]}-{fname.name}")  # same suffix
    try:
        yield tmp
        os.replace(tmp, fname)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(fname, text):
    """Write ``text`` to ``fname`` atomically (see :func:`atomic_path`)."""
    with atomic_path(fname) as tmp:
        Path(tmp).write_text(text)
