#!/usr/bin/env bash
# Set up everything (tools/setup.sh), install the documentation extra and build
# the site (API pages, markdown reports, tutorials run by sphinx-gallery) into
# docs/_build/html, warnings as errors. Extra arguments go to sphinx-build,
# e.g. `tools/docs.sh -D plot_gallery=0` to skip running the tutorials;
# BRAINFORGE_TUTORIAL_QUICK=1 runs them with reduced sizes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BRAINFORGE_VENV:-$ROOT/.venv}
"$ROOT/tools/setup.sh"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[doc]"
cd "$ROOT/docs"
exec "$VENV/bin/sphinx-build" -W -b html "$@" . _build/html
