#!/usr/bin/env bash
# Set up everything (tools/setup.sh), then run the whole test suite, slow tests
# and 3D rendering included. Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/setup.sh"
cd "$ROOT"
# lint, formatting and the one-way import contract first: cheap, and a back import fails CI
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/ruff" check .
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/ruff" format --check .
"${BRAINFORGE_VENV:-$ROOT/.venv}/bin/lint-imports"
PY="${BRAINFORGE_VENV:-$ROOT/.venv}/bin/python"
# The render tests must run, not skip, wherever OpenGL works: the package starts Xvfb
# when there is no display. Where Qt gets no OpenGL context at all they are skipped
# (reported by pytest -ra), since the 3D viewer would crash the process.
if "$PY" -c "from mne_brainforge.viz import ensure_3d_display; ensure_3d_display()"; then
    export BRAINFORGE_REQUIRE_3D=1
else
    echo "[test] WARNING: no OpenGL for 3D rendering here; the render tests will be skipped"
fi
exec "$PY" -m pytest "$@"
