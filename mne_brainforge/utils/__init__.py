"""Helpers every stage uses: docstrings, argument checks, atomic io, cache, config."""

from ._cache import build_cached_dir, cached_file
from ._checks import check_int, check_number, check_option, check_type
from ._docs import docdict, fill_doc
from ._io import array_sha256, atomic_path, atomic_write_text, file_sha256
from ._signal import rational_ratio, resample
from .config import get_data_path

__all__ = [
    "array_sha256",
    "atomic_path",
    "atomic_write_text",
    "build_cached_dir",
    "cached_file",
    "check_int",
    "check_number",
    "check_option",
    "check_type",
    "docdict",
    "fill_doc",
    "file_sha256",
    "get_data_path",
    "rational_ratio",
    "resample",
]
