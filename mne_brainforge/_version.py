"""Package version (one place, read by setuptools and the package)."""

__version__ = "0.2.0.dev0"
